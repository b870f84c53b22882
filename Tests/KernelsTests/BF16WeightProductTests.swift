import LlavaUHD
import Testing
import TestSupport

/// The exact (float32) product against BF16 weights (`BF16WeightProduct`, the own AVX-512
/// kernel `MatMul.linear` uses for more than `matvecMaxRows` rows) against a float64 reference
/// from the same operands (x as float32, the weights widened exactly). Its only error is float32
/// summation (fused multiply-add chains over blocks of 256 columns, the blocks added), so the
/// tolerance is |y − y₆₄| ≤ 1e-5 · Σ|w·x| per output (the worst case is about k·2⁻²⁴ ≈ 3.6e-5
/// here; random signs stay near 1e-6).
/// Shapes exercise the 32-row x panels (m = 70), the 12-row weight blocks (n = 37) and the
/// 256-column blocks with a tail that is not a multiple of 16 (k = 600). Each output depends
/// only on its row of x and its weight row: the thread count and the other rows of x do not
/// change it. On CPUs without AVX-512, `MatMul.linear`'s OpenBLAS route meets the same bound.
@Suite struct BF16WeightProductTests {
    @Test func matchesFloat64Reference() throws {
        let m = 70, n = 37, k = 600
        BFloat16Operands.withRandom(m: m, n: n, k: k) { x, w, view in
            var y = [Float](repeating: 0, count: m * n)
            MatMul.linear(x, rows: m, weight: view, into: &y, context: ComputeContext(threads: 2))
            var worst = 0.0
            for i in 0..<m {
                for r in 0..<n {
                    var s = 0.0, sa = 0.0
                    for j in 0..<k {
                        let p = Double(x[i * k + j]) * BFloat16Operands.widen(w[r * k + j])
                        s += p
                        sa += abs(p)
                    }
                    worst = max(worst, abs(Double(y[i * n + r]) - s) / sa)
                }
            }
            print("BF16 weights, float32 product: worst |y − y64| / Σ|w·x| = \(worst)")
            #expect(worst <= 1e-5)
            guard BF16WeightProduct.isAvailable else { return }
            var y1 = [Float](repeating: 0, count: m * n), y2 = y1
            BF16WeightProduct.linear(x, rows: m, weight: view, into: &y1, ldOut: n, threads: 1)
            BF16WeightProduct.linear(x, rows: m, weight: view, into: &y2, ldOut: n, threads: 2)
            #expect(y1 == y2)
            #expect(y == y1)
            // The last 5 rows alone (a partial panel at another position): the same values.
            let tail = 5
            var yt = [Float](repeating: 0, count: tail * n)
            x.withUnsafeBufferPointer { xb in
                BF16WeightProduct.linear(xb.baseAddress! + (m - tail) * k, rows: tail, weight: view, into: &yt, ldOut: n, threads: 2)
            }
            #expect(Array(y1[((m - tail) * n)...]) == yt)
        }
    }
}
