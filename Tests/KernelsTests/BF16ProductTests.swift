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
    static func bf16(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    static func widen(_ h: UInt16) -> Double { Double(Float(bitPattern: UInt32(h) << 16)) }

    @Test func matchesFloat64Reference() throws {
        let m = 70, n = 37, k = 2080
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(m * k)).map { _ in Float.random(in: -2...2, using: &rng) }
        let w = (0..<(n * k)).map { _ in Self.bf16(Float.random(in: -0.1...0.1, using: &rng)) }
        let owner = Owner()
        w.withUnsafeBytes { raw in
            let view = TensorView(name: "w", dtype: .bf16, shape: [n, k], data: raw.baseAddress!, owner: owner)
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
                        let p = Self.widen(Self.bf16(x[i * k + j])) * Self.widen(w[r * k + j])
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

    final class Owner {}
}
