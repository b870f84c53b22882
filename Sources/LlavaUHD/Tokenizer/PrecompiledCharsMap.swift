/// SentencePiece's compiled normalization rules (`normalizer_spec.precompiled_charsmap`, e.g.
/// the `nmt_nfkc` rules): a darts-clone double-array trie over UTF-8 input prefixes whose
/// values index NUL-terminated replacement strings.
///
/// Blob layout: trie size in bytes (UInt32, little-endian), the trie (UInt32 units,
/// little-endian), then the replacement strings. A unit packs a label (bits 0–7, plus bit 31),
/// a has-leaf flag (bit 8), an offset (bits 10–31, scaled by 256 when bit 9 is set), or, in a
/// leaf unit, a 31-bit value.
struct PrecompiledCharsMap: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]

    init(blob: [UInt8], context: String) throws(LlavaError) {
        guard blob.count > 4 else { throw LlavaError(.badTokenizer, "\(context): precompiled_charsmap is truncated") }
        let trieSize = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieSize < blob.count - 4 + 1, trieSize % 4 == 0, trieSize >= 4 else {
            throw LlavaError(.badTokenizer, "\(context): precompiled_charsmap trie size \(trieSize) does not fit its \(blob.count)-byte blob")
        }
        var units = [UInt32](repeating: 0, count: trieSize / 4)
        for i in 0..<units.count {
            let o = 4 + 4 * i
            units[i] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        self.units = units
        self.replacements = Array(blob[(4 + trieSize)...])
    }

    @inline(__always) private static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
    @inline(__always) private static func value(_ u: UInt32) -> Int { Int(u & 0x7FFF_FFFF) }
    @inline(__always) private static func label(_ u: UInt32) -> UInt32 { u & (1 << 31 | 0xFF) }
    @inline(__always) private static func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }

    /// The longest rule matching a prefix of `input[start..<end]`: its length in input bytes
    /// and its replacement, or nil when no rule matches.
    func longestMatch(_ input: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> (length: Int, replacement: ArraySlice<UInt8>)? {
        guard !units.isEmpty else { return nil }
        var node = Self.offset(units[0])
        var best: (length: Int, value: Int)?
        var i = start
        while i < end {
            let c = input[i]
            node ^= Int(c)
            guard node >= 0 && node < units.count else { break }
            let u = units[node]
            guard Self.label(u) == UInt32(c) else { break }
            node ^= Self.offset(u)
            guard node >= 0 && node < units.count else { break }
            if Self.hasLeaf(u) {
                best = (i + 1 - start, Self.value(units[node]))
            }
            i += 1
        }
        guard let best, best.value < replacements.count else { return nil }
        var e = best.value
        while e < replacements.count && replacements[e] != 0 { e += 1 }
        return (best.length, replacements[best.value..<e])
    }
}
