import CLlavaUHD
import Testing
import TestSupport

/// `luhd_proj_key_value_row` (the window attention's key and value rows, written past the cache
/// when aligned) against the definition: value = sample, key = (sample + position) + embedding,
/// bit for bit, for aligned and unaligned outputs and lengths that leave a scalar tail.
@Suite struct KeyValueRowTests {
    @Test(arguments: [(4096, 0), (4096, 1), (37, 0), (8, 3), (1, 0)])
    func matchesTheDefinitionBitForBit(_ shape: (Int, Int)) {
        let (n, misalign) = shape
        var random = TestRandom(seed: UInt64(n * 10 + misalign))
        let sample = random.floats(n, -3, 3), position = random.floats(n, -1, 1), embedding = random.floats(n, -0.5, 0.5)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: (2 * n + 64) * 4, alignment: 64)
        defer { storage.deallocate() }
        let base = storage.bindMemory(to: Float.self, capacity: 2 * n + 64)
        let key = base + misalign, value = base + misalign + n + (16 - n % 16) % 16
        luhd_proj_key_value_row(sample, position, embedding, n, key, value)
        for i in 0..<n {
            #expect(value[i].bitPattern == sample[i].bitPattern, "value \(i) of \(n)")
            #expect(key[i].bitPattern == (sample[i] + position[i] + embedding[i]).bitPattern, "key \(i) of \(n)")
        }
    }
}
