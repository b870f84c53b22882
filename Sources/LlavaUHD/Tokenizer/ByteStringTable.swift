/// A hash table from byte strings to token ids, with every key stored in one flat buffer.
///
/// Vocabularies have 32 k – 152 k entries; keeping keys in one buffer and probing an
/// open-addressing slot array avoids an allocation per entry at load time and per lookup at
/// encode time (lookups take a pointer and a length, e.g. a range of the text being encoded).
struct ByteStringTable: Sendable {
    /// All keys, concatenated in insertion order.
    private var storage: [UInt8] = []
    /// Key k occupies `storage[keyStarts[k] ..< keyStarts[k + 1]]` (`Int`: the keys of a
    /// hostile vocabulary file may pass 2 GiB).
    private var keyStarts: [Int] = [0]
    private var values: [Int32] = []
    /// Per slot: key index + 1 (0 = empty) in the low 32 bits, the key's hash in the high 32.
    private var slots: [UInt64]

    init(expectedCount: Int = 16) {
        var n = 16
        while n < expectedCount * 2 { n <<= 1 }
        slots = [UInt64](repeating: 0, count: n)
        values.reserveCapacity(expectedCount)
        keyStarts.reserveCapacity(expectedCount + 1)
    }

    var count: Int { values.count }

    @inline(__always)
    private static func hash(_ p: UnsafePointer<UInt8>?, _ n: Int) -> UInt64 {
        // FNV-1a, 64-bit, then a final mix so that all bits depend on every byte.
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        if let p { for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x0000_0100_0000_01B3 } }
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ h >> 32
    }

    /// The value stored for the `n` bytes at `p`, or nil.
    func value(_ p: UnsafePointer<UInt8>?, count n: Int) -> Int32? {
        let h = Self.hash(p, n)
        let tag = h >> 32
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { s in
            storage.withUnsafeBufferPointer { keys in
                keyStarts.withUnsafeBufferPointer { starts in
                    while true {
                        let slot = s[i]
                        if slot == 0 { return nil }
                        if slot >> 32 == tag {
                            let k = Int(slot & 0xFFFF_FFFF) - 1
                            let start = starts[k], end = starts[k + 1]
                            if end - start == n {
                                var equal = true
                                for j in 0..<n where keys[start + j] != p.unsafelyUnwrapped[j] { equal = false; break }
                                if equal { return values[k] }
                            }
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }

    func value<C: Collection<UInt8>>(for key: C) -> Int32? {
        if let r = key.withContiguousStorageIfAvailable({ value($0.baseAddress, count: $0.count) }) { return r }
        return Array(key).withUnsafeBufferPointer { value($0.baseAddress, count: $0.count) }
    }

    /// The key bytes of entry `k` (insertion order).
    func key(at k: Int) -> ArraySlice<UInt8> {
        storage[keyStarts[k]..<keyStarts[k + 1]]
    }

    /// The value of entry `k` (insertion order).
    func value(at k: Int) -> Int32 { values[k] }

    /// Inserts a key; returns false (and changes nothing) when the key is already present.
    @discardableResult
    mutating func insert<C: Collection<UInt8>>(_ key: C, value: Int32) -> Bool {
        let start = storage.count
        storage.append(contentsOf: key)
        let n = storage.count - start
        let present = storage.withUnsafeBufferPointer { self.value($0.baseAddress.map { $0 + start }, count: n) } != nil
        if present {
            storage.removeLast(n)
            return false
        }
        if (values.count + 1) * 2 > slots.count { grow() }
        keyStarts.append(storage.count)
        values.append(value)
        place(values.count - 1)
        return true
    }

    private mutating func place(_ k: Int) {
        let mask = slots.count - 1
        let s = keyStarts[k], e = keyStarts[k + 1]
        let h = storage.withUnsafeBufferPointer { Self.hash($0.baseAddress.map { $0 + s }, e - s) }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = (h >> 32) << 32 | UInt64(k + 1)
    }

    private mutating func grow() {
        slots = [UInt64](repeating: 0, count: slots.count * 2)
        for k in 0..<values.count { place(k) }
    }
}
