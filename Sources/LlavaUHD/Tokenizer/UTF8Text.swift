/// How invalid UTF-8 in decoded bytes is turned into text.
public enum UTF8Repair: Sendable, Equatable {
    /// Every byte that does not start a valid sequence becomes one U+FFFD (sentencepiece's
    /// `Decode`: an incomplete 3-byte sequence gives two replacement characters).
    case perByte
    /// Each maximal subpart of an ill-formed sequence becomes one U+FFFD (the Unicode
    /// recommendation, Rust's `String::from_utf8_lossy`, used by Hugging Face `tokenizers`).
    case maximalSubpart
}

/// UTF-8 helpers on raw bytes (the core target has no Foundation and no String processing
/// module, and tokenizers must treat text as bytes).
enum UTF8Text {
    /// The length of the valid, well-formed sequence starting at `i` (1...4), or nil when the
    /// bytes at `i` are not a complete valid scalar (overlong forms, surrogates and values
    /// above U+10FFFF are invalid).
    @inline(__always)
    static func validSequenceLength(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        let n = b.count - i
        let c0 = b[i]
        if c0 < 0x80 { return 1 }
        if c0 < 0xC2 { return nil }
        if c0 < 0xE0 {
            return n >= 2 && b[i + 1] & 0xC0 == 0x80 ? 2 : nil
        }
        if c0 < 0xF0 {
            guard n >= 3 else { return nil }
            let c1 = b[i + 1]
            let lo: UInt8 = c0 == 0xE0 ? 0xA0 : 0x80
            let hi: UInt8 = c0 == 0xED ? 0x9F : 0xBF
            return c1 >= lo && c1 <= hi && b[i + 2] & 0xC0 == 0x80 ? 3 : nil
        }
        if c0 < 0xF5 {
            guard n >= 4 else { return nil }
            let c1 = b[i + 1]
            let lo: UInt8 = c0 == 0xF0 ? 0x90 : 0x80
            let hi: UInt8 = c0 == 0xF4 ? 0x8F : 0xBF
            return c1 >= lo && c1 <= hi && b[i + 2] & 0xC0 == 0x80 && b[i + 3] & 0xC0 == 0x80 ? 4 : nil
        }
        return nil
    }

    /// True when `bytes` is well-formed UTF-8.
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            if bytes[i] < 0x80 { i += 1; continue }
            guard let n = validSequenceLength(bytes, at: i) else { return false }
            i += n
        }
        return true
    }

    static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { isValid($0) }
    }

    /// Throws `.invalidUTF8` unless `bytes` is well-formed UTF-8.
    static func validate(_ bytes: [UInt8]) throws(LlavaError) {
        guard isValid(bytes) else {
            let offset = bytes.withUnsafeBufferPointer { firstInvalidOffset($0) }
            throw LlavaError(.invalidUTF8, "the text is not valid UTF-8 (first bad byte at offset \(offset))")
        }
    }

    static func firstInvalidOffset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 0
        while i < bytes.count {
            guard let n = validSequenceLength(bytes, at: i) else { return i }
            i += n
        }
        return bytes.count
    }

    /// The scalar value of the valid sequence of length `length` at `i`.
    @inline(__always)
    static func scalar(_ b: UnsafeBufferPointer<UInt8>, at i: Int, length: Int) -> UInt32 {
        switch length {
        case 1: return UInt32(b[i])
        case 2: return UInt32(b[i] & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F)
        case 3: return UInt32(b[i] & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F)
        default:
            return UInt32(b[i] & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12
                | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)
        }
    }

    /// Appends the UTF-8 encoding of a scalar value.
    @inline(__always)
    static func append(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case 0..<0x80: out.append(UInt8(v))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F))
            out.append(UInt8(0x80 | v & 0x3F))
        default:
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
            out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }

    static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// The length of the ill-formed subpart at `i` under `.maximalSubpart`: the longest prefix
    /// of a valid sequence (at least one byte) that the bytes at `i` start with.
    static func maximalSubpartLength(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> Int {
        let c0 = b[i]
        let expected: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch c0 {
        case 0xC2...0xDF: expected = 2
        case 0xE0...0xEF:
            expected = 3
            if c0 == 0xE0 { lo = 0xA0 } else if c0 == 0xED { hi = 0x9F }
        case 0xF0...0xF4:
            expected = 4
            if c0 == 0xF0 { lo = 0x90 } else if c0 == 0xF4 { hi = 0x8F }
        default: return 1
        }
        var k = 1
        while k < expected && i + k < b.count {
            let c = b[i + k]
            if k == 1 { guard c >= lo && c <= hi else { break } } else { guard c & 0xC0 == 0x80 else { break } }
            k += 1
        }
        return k
    }

    /// Decodes bytes to text, replacing ill-formed sequences as `repair` says.
    static func decode(_ bytes: [UInt8], repair: UTF8Repair) -> String {
        bytes.withUnsafeBufferPointer { b in
            if isValid(b) { return String(decoding: b, as: UTF8.self) }
            var out: [UInt8] = []
            out.reserveCapacity(b.count + 8)
            var i = 0
            while i < b.count {
                if let n = validSequenceLength(b, at: i) {
                    out.append(contentsOf: b[i..<(i + n)])
                    i += n
                } else {
                    out.append(contentsOf: replacementCharacter)
                    i += repair == .perByte ? 1 : maximalSubpartLength(b, at: i)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// The start of a trailing incomplete sequence: the offset from which the last bytes are a
    /// proper prefix of some valid sequence (so more bytes may still complete it), or
    /// `bytes.count` when the bytes end on a boundary or with bytes that can never become valid.
    static func incompleteTailStart(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBufferPointer { b in
            let n = b.count
            var start = n - 1
            // A sequence is at most 4 bytes: look back over at most 3 continuation bytes.
            while start >= 0 && start >= n - 4 {
                let c = b[start]
                if c & 0xC0 != 0x80 {
                    // A lead (or ASCII) byte: is b[start..<n] a proper prefix of a valid sequence?
                    guard c >= 0xC2 && c <= 0xF4 else { return n }
                    let needed = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4
                    let have = n - start
                    guard have < needed else { return n }
                    return maximalSubpartLength(b, at: start) == have ? start : n
                }
                start -= 1
            }
            return n
        }
    }

    /// Non-overlapping occurrences of `needle` in `text`, as bytes (0 for an empty needle).
    static func count(_ needle: String, in text: String) -> Int {
        let n = Array(needle.utf8), t = Array(text.utf8)
        guard !n.isEmpty, t.count >= n.count else { return 0 }
        var count = 0, i = 0
        while i + n.count <= t.count {
            if t[i] == n[0] && Array(t[i..<(i + n.count)]) == n { count += 1; i += n.count } else { i += 1 }
        }
        return count
    }
}
