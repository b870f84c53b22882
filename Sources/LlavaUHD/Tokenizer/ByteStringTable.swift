/// A hash table from byte strings to token ids, with every key stored in one flat buffer.
///
/// Vocabularies have 32 k – 152 k entries; keeping keys in one buffer and probing an
/// open-addressing slot array avoids an allocation per entry at load time and per lookup at
/// encode time (lookups take a pointer and a length, e.g. a range of the text being encoded).
struct ByteStringTable: Sendable {
    /// All keys, concatenated in insertion order.
    private var storage: [UInt8] = []
    /// Key k occupies `storage[keyStarts[k] ..< keyStarts[k + 1]]`.
    private var keyStarts: [Int32] = [0]
    private var values: [Int32] = []
    /// Key index + 1 per slot, 0 for an empty slot. The count is a power of two.
    private var slots: [Int32]

    init(expectedCount: Int = 16) {
        var n = 16
        while n < expectedCount * 2 { n <<= 1 }
        slots = [Int32](repeating: 0, count: n)
        values.reserveCapacity(expectedCount)
        keyStarts.reserveCapacity(expectedCount + 1)
    }

    var count: Int { values.count }

    @inline(__always)
    private static func hash(_ p: UnsafePointer<UInt8>?, _ n: Int) -> UInt64 {
        // FNV-1a, 64-bit, then a final mix so that the low bits depend on every byte.
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<n { h = (h ^ UInt64(p.unsafelyUnwrapped[i])) &* 0x0000_0100_0000_01B3 }
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ h >> 32
    }

    @inline(__always)
    private func keyEquals(_ k: Int, _ p: UnsafePointer<UInt8>?, _ n: Int) -> Bool {
        let s = Int(keyStarts[k]), e = Int(keyStarts[k + 1])
        guard e - s == n else { return false }
        return storage.withUnsafeBufferPointer { buf in
            for i in 0..<n where buf[s + i] != p.unsafelyUnwrapped[i] { return false }
            return true
        }
    }

    /// The value stored for the `n` bytes at `p`, or nil.
    func value(_ p: UnsafePointer<UInt8>?, count n: Int) -> Int32? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: Self.hash(p, n)) & mask
        return slots.withUnsafeBufferPointer { s in
            while true {
                let k = Int(s[i])
                if k == 0 { return nil }
                if keyEquals(k - 1, p, n) { return values[k - 1] }
                i = (i + 1) & mask
            }
        }
    }

    func value<C: Collection<UInt8>>(for key: C) -> Int32? {
        if let r = key.withContiguousStorageIfAvailable({ value($0.baseAddress, count: $0.count) }) { return r }
        return Array(key).withUnsafeBufferPointer { value($0.baseAddress, count: $0.count) }
    }

    /// The key bytes of entry `k` (insertion order).
    func key(at k: Int) -> ArraySlice<UInt8> {
        storage[Int(keyStarts[k])..<Int(keyStarts[k + 1])]
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
        keyStarts.append(Int32(storage.count))
        values.append(value)
        place(values.count - 1)
        return true
    }

    private mutating func place(_ k: Int) {
        let mask = slots.count - 1
        let s = Int(keyStarts[k]), e = Int(keyStarts[k + 1])
        let h = storage.withUnsafeBufferPointer { Self.hash($0.baseAddress.map { $0 + s }, e - s) }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = Int32(k + 1)
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        for k in 0..<values.count { place(k) }
    }
}
