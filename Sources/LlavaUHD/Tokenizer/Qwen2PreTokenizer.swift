/// Qwen2's pre-tokenizer: the text is cut into the pieces the regular expression
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// matches one after another (leftmost-first alternation, greedy quantifiers, backtracking),
/// written out by hand: \p{L} is general category L (Lu Ll Lt Lm Lo), \p{N} is N (Nd Nl No),
/// \s is the Unicode White_Space property. BPE then runs on each piece separately.
enum Qwen2PreTokenizer {
    /// The pattern as tokenizer.json spells it (for checking that a file uses this split).
    static let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

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
    static func split(_ text: ArraySlice<UInt8>) -> [Range<Int>] {
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
                cls.append(classes(v))
                values.append(v)
                i += n
            }
            offsets.append(b.count)
        }
        let n = cls.count
        @inline(__always) func isL(_ i: Int) -> Bool { cls[i] & letter != 0 }
        @inline(__always) func isN(_ i: Int) -> Bool { cls[i] & number != 0 }
        @inline(__always) func isS(_ i: Int) -> Bool { cls[i] & whitespace != 0 }
        @inline(__always) func isCRLF(_ i: Int) -> Bool { cls[i] & lineBreak != 0 }
        /// [^\s\p{L}\p{N}]
        @inline(__always) func isOther(_ i: Int) -> Bool { cls[i] & (letter | number | whitespace) == 0 }

        var pieces: [Range<Int>] = []
        var p = 0
        while p < n {
            let end = matchLength(at: p)
            pieces.append(offsets[p]..<offsets[end])
            p = end
        }
        return pieces

        /// The end (character index) of the match starting at character `p`.
        func matchLength(at p: Int) -> Int {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if values[p] == 0x27 && p + 1 < n {
                let a = foldedLetter(values[p + 1])
                let b: UInt8 = p + 2 < n ? foldedLetter(values[p + 2]) : 0
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
            // \p{N}
            if isN(p) { return p + 1 }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            q = p
            if values[p] == 0x20 && p + 1 < n && isOther(p + 1) { q += 1 }
            if isOther(q) {
                while q < n && isOther(q) { q += 1 }
                while q < n && isCRLF(q) { q += 1 }
                return q
            }
            // The rest start with whitespace (every other character matched above).
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
    }
}
