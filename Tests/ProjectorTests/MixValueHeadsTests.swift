@testable import LlavaUHD
import Testing
import TestSupport

/// `WindowAttention.mixValueHeads` (the float32 Hiwin mixing and value heads done a slice of
/// `mixColumns` columns of E at a time) against its definition in float64:
/// `out[(i, s), h·d + c] = Σ_x Wv[h·d + c, x] · Σ_j p[i, (s, h), offset + j] · values[i, offset + j, x]`.
/// E = 288 (one full slice and a 32-column one), 256 (exactly one) and 640 (two and a half);
/// the view's segment in the middle of the keys; `out` and the panel start full of NaN (every
/// output is written, nothing stale is read). Results on 1 and 2 threads are identical bit for bit.
@Suite struct MixValueHeadsTests {
    /// (windows, sets, heads, head dim, total keys, segment offset, segment keys)
    @Test(arguments: [(3, 2, 3, 96, 11, 4, 5), (2, 4, 2, 128, 27, 0, 27), (5, 1, 4, 160, 9, 2, 7)])
    func matchesTheDefinition(_ shape: (Int, Int, Int, Int, Int, Int, Int)) throws {
        try BLAS.load()
        let (count, sets, heads, d, totalKeys, offset, keys) = shape
        let e = heads * d, rowsPerWindow = sets * heads, rows = count * sets
        var random = TestRandom(seed: UInt64(e * 31 + totalKeys))
        let scores = random.floats(count * rowsPerWindow * totalKeys, 0, 1)
        let values = random.floats(count * totalKeys * e, -2, 2)
        let weight = random.floats(e * e, -0.1, 0.1)
        let panelCount = rowsPerWindow * count * min(e, WindowAttention.mixColumns)

        func run(threads: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: rows * e)
            var panel = [Float](repeating: .nan, count: panelCount)
            scores.withUnsafeBufferPointer { p in
                values.withUnsafeBufferPointer { v in
                    weight.withUnsafeBufferPointer { w in
                        panel.withUnsafeMutableBufferPointer { m in
                            out.withUnsafeMutableBufferPointer { o in
                                WindowAttention.mixValueHeads(
                                    scores: p.baseAddress!, count: count, sets: sets, heads: heads, headDim: d,
                                    totalKeys: totalKeys, segment: (offset, keys), values: v.baseAddress!,
                                    valueWeight: w.baseAddress!, panel: m.baseAddress!, into: o.baseAddress!,
                                    context: ComputeContext(threads: threads))
                            }
                        }
                    }
                }
            }
            return out
        }
        let one = run(threads: 1), two = run(threads: 2)
        #expect(one.map(\.bitPattern) == two.map(\.bitPattern), "1 and 2 threads differ")

        var worst = 0.0
        for i in 0..<count {
            for s in 0..<sets {
                for h in 0..<heads {
                    let scoreRow = (i * rowsPerWindow + s * heads + h) * totalKeys + offset
                    var mixed = [Double](repeating: 0, count: e)
                    for j in 0..<keys {
                        let a = Double(scores[scoreRow + j]), valueRow = (i * totalKeys + offset + j) * e
                        for x in 0..<e { mixed[x] += a * Double(values[valueRow + x]) }
                    }
                    for c in 0..<d {
                        let weightRow = (h * d + c) * e
                        var sum = 0.0, magnitude = 0.0
                        for x in 0..<e {
                            sum += mixed[x] * Double(weight[weightRow + x])
                            magnitude += abs(mixed[x] * Double(weight[weightRow + x]))
                        }
                        let got = Double(one[(i * sets + s) * e + h * d + c])
                        let error = abs(got - sum) / max(magnitude, 1e-30)
                        worst = max(worst, error.isNaN ? .infinity : error)
                    }
                }
            }
        }
        // Float32 sums of at most 640 + 27 terms: far under 1e-5 of the sum of magnitudes.
        #expect(worst < 1e-5, "worst error \(worst) of the sum of |terms|")
        print("MixValueHeadsTests E = \(e), \(keys) of \(totalKeys) keys: worst error \(worst) of the sum of |terms|")
    }
}
