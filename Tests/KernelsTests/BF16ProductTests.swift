import LlavaUHD
import Testing
import TestSupport

/// The bf16 matrix product (`BF16Product`, AVX512_BF16 `vdpbf16ps`) against a float64 reference
/// computed from the same operands: x rounded to bf16 (to nearest even), the BF16 weights as
/// stored. The product's only other error is float32 summation, so the tolerance is
/// |y − y₆₄| ≤ 1e-5 · Σ|w·x| per output. Shapes exercise the 32-row x panels, the 12-row
/// weight blocks and the 1024-column blocks (m = 70, n = 37, k = 2080), and results must not
/// depend on the thread count. Skipped on CPUs without AVX512_BF16 (where `MatMul.linear` with
/// `.bfloat16` falls back to float32, which is checked too).
@Suite struct BF16ProductTests {
    @Test func matchesFloat64Reference() throws {
        let m = 70, n = 37, k = 2080
        BFloat16Operands.withRandom(m: m, n: n, k: k) { x, w, view in
            var y1 = [Float](repeating: 0, count: m * n), y2 = y1, yf = y1
            MatMul.linear(x, rows: m, weight: .dense(view), into: &yf, arithmetic: .bfloat16, context: ComputeContext(threads: 2))
            guard BF16Product.isAvailable else {
                var exact = [Float](repeating: 0, count: m * n)
                MatMul.linear(x, rows: m, weight: view, into: &exact, context: ComputeContext(threads: 2))
                #expect(yf == exact)
                return
            }
            BF16Product.linear(x, rows: m, weight: view, into: &y1, ldOut: n, threads: 1)
            BF16Product.linear(x, rows: m, weight: view, into: &y2, ldOut: n, threads: 2)
            #expect(y1 == y2)
            #expect(yf == y1)
            var worst = 0.0
            for i in 0..<m {
                for r in 0..<n {
                    var s = 0.0, sa = 0.0
                    for j in 0..<k {
                        let p = BFloat16Operands.widen(BFloat16Operands.bits(x[i * k + j])) * BFloat16Operands.widen(w[r * k + j])
                        s += p
                        sa += abs(p)
                    }
                    worst = max(worst, abs(Double(y1[i * n + r]) - s) / sa)
                }
            }
            print("BF16Product: worst |y − y64| / Σ|w·x| = \(worst)")
            #expect(worst <= 1e-5)
        }
    }
}
