/// GPT-2's byte-to-character mapping used by byte-level BPE vocabularies: the printable bytes
/// ("!"…"~", "¡"…"¬", "®"…"ÿ") stand for themselves and the other 68 bytes, in order, for
/// U+0100, U+0101, … (so a space is "Ġ" U+0120 and a newline "Ċ" U+010A).
enum ByteLevelAlphabet {
    /// The character standing for each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(UInt8(b)) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte each character stands for, indexed by scalar value (0..<324), -1 for none.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    private static func isPrintable(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The vocabulary spelling (UTF-8) of raw bytes.
    static func encode<C: Collection<UInt8>>(_ bytes: C) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { UTF8Text.append(scalarForByte[Int(b)], to: &out) }
        return out
    }

    /// The raw bytes a vocabulary spelling stands for, or nil when a character is not in the
    /// alphabet (added tokens such as "<|im_end|>" are all printable ASCII and do map).
    static func decode(_ spelling: [UInt8]) -> [UInt8]? {
        spelling.withUnsafeBufferPointer { b in
            var out: [UInt8] = []
            out.reserveCapacity(b.count)
            var i = 0
            while i < b.count {
                guard let n = UTF8Text.validSequenceLength(b, at: i) else { return nil }
                let s = UTF8Text.scalar(b, at: i, length: n)
                guard s < 324, byteForScalar[Int(s)] >= 0 else { return nil }
                out.append(UInt8(byteForScalar[Int(s)]))
                i += n
            }
            return out
        }
    }
}
