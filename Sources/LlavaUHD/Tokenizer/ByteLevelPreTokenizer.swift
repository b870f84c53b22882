/// The pre-tokenizers of byte-level BPE vocabularies: the text is cut into the pieces a
/// regular expression matches one after another (leftmost-first alternation, greedy
/// quantifiers, backtracking), written out by hand; BPE then runs on each piece separately.
/// \p{L} is general category L (Lu Ll Lt Lm Lo), \p{N} is N (Nd Nl No), \s is the Unicode
/// White_Space property. The rules, by GGUF `tokenizer.ggml.pre` (llama.cpp's names):
///
/// * `.qwen2` (`qwen2`, `deepseek-r1-qwen`; Qwen2's tokenizer.json):
///   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// * `.llama3` (`llama3`, `llama-v3`, `llama-bpe`): the same with `\p{N}{1,3}` and the
///   contractions matched case-insensitively in ASCII only (`'[sS]|'[tT]|…`);
/// * `.gpt2` (`gpt2`, `gpt-2`): `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
/// * `.smollm` (`smollm`, also StarCoder's and Refact's): every \p{N} character is a piece of
///   its own first, then `.gpt2` splits the text between them.
enum ByteLevelPreTokenizer: Sendable, Equatable {
    case qwen2, llama3, gpt2, smollm

    /// Qwen2's pattern as tokenizer.json spells it (for checking that a file uses this split).
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The rule of a GGUF `tokenizer.ggml.pre` value, nil for one not implemented.
    init?(ggufName: String) {
        switch ggufName {
        case "qwen2", "deepseek-r1-qwen": self = .qwen2
        case "llama3", "llama-v3", "llama-bpe": self = .llama3
        case "gpt2", "gpt-2": self = .gpt2
        case "smollm", "starcoder", "refact": self = .smollm
        default: return nil
        }
    }

    private static let letter: UInt8 = 1, number: UInt8 = 2, whitespace: UInt8 = 4, lineBreak: UInt8 = 8

    /// Character classes of a scalar (bit set of letter / number / whitespace / \r or \n).
    @inline(__always)
    private static func classes(_ v: UInt32) -> UInt8 {
        if v < 0x80 {
            switch v {
            case 0x0A, 0x0D: return whitespace | lineBreak
            case 0x09, 0x0B, 0x0C, 0x20: return whitespace
            case 0x30...0x39: return number
            case 0x41...0x5A, 0x61...0x7A: return letter
            default: return 0
            }
        }
        guard let u = Unicode.Scalar(v) else { return 0 }
        let p = u.properties
        var c: UInt8 = p.isWhitespace ? whitespace : 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c |= letter
        case .decimalNumber, .letterNumber, .otherNumber: c |= number
        default: break
        }
        return c
    }

    /// The ASCII letter a scalar matches case-insensitively (Unicode simple case folding:
    /// "ſ" U+017F folds to "s"), or 0.
    @inline(__always)
    private static func foldedLetter(_ v: UInt32) -> UInt8 {
        switch v {
        case 0x41...0x5A: return UInt8(v) + 0x20
        case 0x61...0x7A: return UInt8(v)
        case 0x17F: return UInt8(ascii: "s")
        default: return 0
        }
    }

    /// The pieces of valid UTF-8 `text`, as byte ranges relative to `text.startIndex`, in order
    /// and covering the whole text.
    func split(_ text: ArraySlice<UInt8>) -> [Range<Int>] {
        // Decode once: byte offset, class bits and the scalar of every character.
        var offsets: [Int] = []
        var cls: [UInt8] = []
        var values: [UInt32] = []
        offsets.reserveCapacity(text.count + 1)
        Array(text).withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                let n = UTF8Text.validSequenceLength(b, at: i) ?? 1
                let v = UTF8Text.scalar(b, at: i, length: n)
                offsets.append(i)
                cls.append(Self.classes(v))
                values.append(v)
                i += n
            }
            offsets.append(b.count)
        }
        let n = cls.count
        @inline(__always) func isL(_ i: Int) -> Bool { cls[i] & Self.letter != 0 }
        @inline(__always) func isN(_ i: Int) -> Bool { cls[i] & Self.number != 0 }
        @inline(__always) func isS(_ i: Int) -> Bool { cls[i] & Self.whitespace != 0 }
        @inline(__always) func isCRLF(_ i: Int) -> Bool { cls[i] & Self.lineBreak != 0 }
        /// [^\s\p{L}\p{N}]
        @inline(__always) func isOther(_ i: Int) -> Bool { cls[i] & (Self.letter | Self.number | Self.whitespace) == 0 }

        var pieces: [Range<Int>] = []
        func cut(_ start: Int, _ end: Int, _ match: (Int, Int) -> Int) {
            var p = start
            while p < end {
                let e = match(p, end)
                pieces.append(offsets[p]..<offsets[e])
                p = e
            }
        }
        switch self {
        case .qwen2: cut(0, n) { p, end in qwen2Match(at: p, end: end, digits: 1, foldLongS: true) }
        case .llama3: cut(0, n) { p, end in qwen2Match(at: p, end: end, digits: 3, foldLongS: false) }
        case .gpt2: cut(0, n, gpt2Match)
        case .smollm:
            var p = 0
            while p < n {
                if isN(p) {
                    pieces.append(offsets[p]..<offsets[p + 1])
                    p += 1
                } else {
                    var e = p
                    while e < n && !isN(e) { e += 1 }
                    cut(p, e, gpt2Match)
                    p = e
                }
            }
        }
        return pieces

        /// The end (character index, at most `n`) of the `.qwen2` / `.llama3` match starting at
        /// character `p`: `digits` is the longest \p{N} run, `foldLongS` folds "ſ" to "s".
        func qwen2Match(at p: Int, end n: Int, digits: Int, foldLongS: Bool) -> Int {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if values[p] == 0x27 && p + 1 < n {
                func fold(_ v: UInt32) -> UInt8 { !foldLongS && v == 0x17F ? 0 : Self.foldedLetter(v) }
                let a = fold(values[p + 1])
                let b: UInt8 = p + 2 < n ? fold(values[p + 2]) : 0
                switch a {
                case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"): return p + 2
                case UInt8(ascii: "r"), UInt8(ascii: "v"): if b == UInt8(ascii: "e") { return p + 3 }
                case UInt8(ascii: "l"): if b == UInt8(ascii: "l") { return p + 3 }
                default: break
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            var q = p
            if !isL(q) && !isN(q) && !isCRLF(q) && q + 1 < n && isL(q + 1) { q += 1 }
            if isL(q) {
                while q < n && isL(q) { q += 1 }
                return q
            }
            // \p{N} or \p{N}{1,3}
            if isN(p) {
                var q = p + 1
                while q < n && q < p + digits && isN(q) { q += 1 }
                return q
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            q = p
            if values[p] == 0x20 && p + 1 < n && isOther(p + 1) { q += 1 }
            if isOther(q) {
                while q < n && isOther(q) { q += 1 }
                while q < n && isCRLF(q) { q += 1 }
                return q
            }
            // The rest start with Self.whitespace (every other character matched above).
            var runEnd = p
            while runEnd < n && isS(runEnd) { runEnd += 1 }
            // \s*[\r\n]+ : up to and including the last line break of the run.
            var k = runEnd - 1
            while k >= p && !isCRLF(k) { k -= 1 }
            if k >= p { return k + 1 }
            // \s+(?!\S) : the run, minus its last character when a non-space follows.
            if runEnd == n { return runEnd }
            if runEnd - p >= 2 { return runEnd - 1 }
            // \s+
            return runEnd
        }

        /// The end (character index, at most `n`) of the `.gpt2` match starting at character `p`.
        func gpt2Match(at p: Int, end n: Int) -> Int {
            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
            if values[p] == 0x27 && p + 1 < n {
                let a = values[p + 1], b: UInt32 = p + 2 < n ? values[p + 2] : 0
                switch a {
                case 0x73, 0x74, 0x6D, 0x64: return p + 2                 // s t m d
                case 0x72, 0x76: if b == 0x65 { return p + 3 }            // re ve
                case 0x6C: if b == 0x6C { return p + 3 }                  // ll
                default: break
                }
            }
            //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ : an optional space, then a run of one class.
            let start = values[p] == 0x20 && p + 1 < n && !isS(p + 1) ? p + 1 : p
            if !isS(start) {
                let same: (Int) -> Bool = isL(start) ? isL : isN(start) ? isN : isOther
                var q = start + 1
                while q < n && same(q) { q += 1 }
                return q
            }
            // \s+(?!\S) : the run, minus its last character when a non-space follows; else \s+.
            var runEnd = p
            while runEnd < n && isS(runEnd) { runEnd += 1 }
            if runEnd < n && runEnd - p >= 2 { return runEnd - 1 }
            return runEnd
        }
    }
}
