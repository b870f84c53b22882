import CLlavaUHD
import Testing
import TestSupport

/// `luhd_proj_mix_value_heads` (the window attention's mixing and value heads in one pass,
/// Sources/CLlavaUHD/projector_kernels.c) against its definition computed one value at a time:
/// each mixed value summed over the group's keys in order from zero with fused multiply-adds,
/// each output summed over E in order from zero with fused multiply-adds, against the value
/// weight as stored. Bit for bit, for the AVX2 route (E a multiple of 16: E = 272 leaves a partial
/// 256-wide block; 50 groups of 4 sets span two 144-row blocks) and the plain one (E = 40), sets
/// of 4, 3 and 1 (the mixing's 4-row and 1-row forms), groups with different key counts, and
/// the heads split in two calls giving the same bits as one call.
@Suite struct MixValueHeadsTests {
    @Test(arguments: [(272, 4, 50), (272, 3, 7), (40, 4, 5), (64, 1, 9)])
    func matchesTheDefinitionBitForBit(_ shape: (Int, Int, Int)) {
        let (e, sets, groups) = shape
        // heads · headDim ≤ E (in the attention they are equal); two strips per head where E allows.
        let heads = e >= 96 ? 3 : 2, headDim = e >= 96 ? 32 : 16, lds = 40
        var random = TestRandom(seed: UInt64(e * 1000 + sets * 100 + groups))
        let keys = (0..<groups).map { 1 + ($0 * 7) % 31 }
        // Group g's scores from g · sets · heads · lds, its value rows from valueStart[g] · E.
        let scores = random.floats(groups * sets * heads * lds, 0, 1)
        let valueStart = keys.indices.map { g in keys[..<g].reduce(0, +) }
        let values = random.floats(keys.reduce(0, +) * e, -2, 2)
        let weight = random.floats(heads * headDim * e, -0.5, 0.5)   // [heads · headDim, E]
        var packed = [Float](repeating: .nan, count: weight.count)
        weight.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { p in
                for h in 0..<heads {
                    luhd_proj_pack_strips(w.baseAddress! + h * headDim * e, e, e, 0, headDim, p.baseAddress! + h * headDim * e)
                }
            }
        }
        var expected = [Float](repeating: 0, count: groups * sets * e)
        for g in 0..<groups {
            for s in 0..<sets {
                for h in 0..<heads {
                    let row = ((g * sets + s) * heads + h) * lds
                    var mixed = [Float](repeating: 0, count: e)
                    for t in 0..<e {
                        for j in 0..<keys[g] { mixed[t].addProduct(scores[row + j], values[(valueStart[g] + j) * e + t]) }
                    }
                    for q in 0..<headDim {
                        var sum: Float = 0
                        for t in 0..<e { sum.addProduct(mixed[t], weight[(h * headDim + q) * e + t]) }
                        expected[(g * sets + s) * e + h * headDim + q] = sum
                    }
                }
            }
        }
        /// Runs the kernel over the head ranges in turn; output columns past heads·headDim stay NaN.
        func run(_ ranges: [Range<Int>]) -> [Float] {
            var out = [Float](repeating: .nan, count: groups * sets * e)
            out.withUnsafeMutableBufferPointer { ob in
                scores.withUnsafeBufferPointer { sb in
                    values.withUnsafeBufferPointer { vb in
                        let outs = (0..<groups).map { ob.baseAddress! + $0 * sets * e }
                        let scorePointers = (0..<groups).map { sb.baseAddress! + $0 * sets * heads * lds }
                        let valuePointers = (0..<groups).map { vb.baseAddress! + valueStart[$0] * e }
                        for r in ranges {
                            let done = luhd_proj_mix_value_heads(groups, sets, heads, headDim, e, scorePointers, lds,
                                                                 valuePointers, keys, r.lowerBound, r.upperBound, packed,
                                                                 outs, e)
                            #expect(done == 1)
                        }
                    }
                }
            }
            return out
        }
        let whole = run([0..<heads]), split = run([0..<1, 1..<heads])
        for i in expected.indices {
            let column = i % e
            if column >= heads * headDim {
                #expect(whole[i].isNaN, "E \(e), sets \(sets): wrote column \(column)")
            } else {
                #expect(whole[i].bitPattern == expected[i].bitPattern, "E \(e), sets \(sets): value \(i)")
            }
            #expect(whole[i].bitPattern == split[i].bitPattern, "E \(e), sets \(sets): split heads at \(i)")
        }
    }
}
