import CLlavaUHD
import LlavaUHD
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The elementwise kernels and softmax of every instruction-set variant this CPU runs, against
/// double-precision references (Glibc's exp / erf / erfc in Double), in units of the float
/// spacing at the reference value (ulp), over ranges whose results are normal floats.
@Suite struct ActivationTests {
    /// The kernel tables this CPU can run (AVX2 always; AVX-512 when present).
    static var tables: [luhd_kernels] {
        [luhd_kernels_avx2(), luhd_kernels_avx512()].compactMap { $0?.pointee }
    }

    /// Evenly spaced inputs over [lo, hi] (2¹⁸ of them, so every binade in range is sampled),
    /// plus random ones, run through `kernel` at an odd offset so vector tails and unaligned
    /// loads are exercised; returns the worst ulp distance and where.
    static func worstUlp(_ lo: Double, _ hi: Double, _ kernel: (UnsafeMutablePointer<Float>, Int) -> Void,
                         _ reference: (Float) -> Double) -> (ulp: Double, at: Float) {
        var rng = TestRandom(seed: 99)
        let n = (1 << 18) + 13
        var x = (0..<n).map { i in Float(lo + (hi - lo) * Double(i) / Double(n - 1)) }
        for i in stride(from: 0, to: n, by: 7) { x[i] = rng.uniform(Float(lo), Float(hi)) }
        let buffer = TestBuffer(byteCount: 4 * n, misalignment: 4)
        for i in 0..<n { buffer.floats[i] = x[i] }
        kernel(buffer.floats, n)
        var worst = (0.0, Float(0))
        for i in 0..<n {
            let e = ulpDistance(buffer.floats[i], reference(x[i]))
            if e > worst.0 { worst = (e, x[i]) }
        }
        return worst
    }

    static func gelu(_ x: Float) -> Double { 0.5 * Double(x) * erfc(-Double(x) / 2.0.squareRoot()) }
    static func silu(_ x: Float) -> Double { Double(x) / (1 + exp(-Double(x))) }
    /// quick GELU as PyTorch evaluates it: the product 1.702·x is a float32 operation.
    static func quickGelu(_ x: Float) -> Double { Double(x) / (1 + exp(-Double(Float(1.702) * x))) }

    @Test func expIsWithinOneUlp() {
        for k in Self.tables {
            let w = Self.worstUlp(-87.3, 88.7, { k.exp($0, $1) }) { exp(Double($0)) }
            print("\(String(cString: k.isa)) exp: \(w.ulp) ulp at \(w.at)")
            #expect(w.ulp <= 1.0)
        }
    }

    @Test func erfIsWithinTwoUlps() {
        for k in Self.tables {
            let w = Self.worstUlp(-10, 10, { k.erf($0, $1) }) { erf(Double($0)) }
            print("\(String(cString: k.isa)) erf: \(w.ulp) ulp at \(w.at)")
            #expect(w.ulp <= 2.0)
            let tiny = Self.worstUlp(-1e-3, 1e-3, { k.erf($0, $1) }) { erf(Double($0)) }
            #expect(tiny.ulp <= 1.0, "erf near 0: \(tiny.ulp) ulp at \(tiny.at)")
        }
    }

    @Test func geluIsWithinFiveUlps() {
        for k in Self.tables {
            // Down to x = −13 the result is a normal float; the negative tail keeps its relative
            // accuracy because it is computed from erfc.
            let core = Self.worstUlp(-5.6, 12, { k.gelu_erf($0, $1) }, Self.gelu)
            let tail = Self.worstUlp(-13, -5.6, { k.gelu_erf($0, $1) }, Self.gelu)
            print("\(String(cString: k.isa)) gelu: \(core.ulp) ulp at \(core.at); tail \(tail.ulp) ulp at \(tail.at)")
            #expect(core.ulp <= 5.0)
            #expect(tail.ulp <= 6.0)
        }
    }

    @Test func siluAndQuickGeluAreWithinThreeUlps() {
        for k in Self.tables {
            let s = Self.worstUlp(-87, 100, { k.silu($0, $1) }, Self.silu)
            let q = Self.worstUlp(-51, 100, { k.quick_gelu($0, $1) }, Self.quickGelu)
            print("\(String(cString: k.isa)) silu: \(s.ulp) ulp at \(s.at); quick gelu: \(q.ulp) ulp at \(q.at)")
            #expect(s.ulp <= 3.0)
            #expect(q.ulp <= 3.0)
        }
    }

    @Test func specialValues() {
        let inputs: [Float] = [.infinity, -.infinity, .nan, 0, -0.0, 1e-30, -1e-30, 200, -200]
        for k in Self.tables {
            func run(_ f: (UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
                var v = inputs
                v.withUnsafeMutableBufferPointer { f($0.baseAddress!, $0.count) }
                return v
            }
            let e = run { k.exp($0, $1) }
            #expect(e[0] == .infinity && e[1] == 0 && e[2].isNaN && e[3] == 1 && e[7] == .infinity && e[8] == 0)
            let r = run { k.erf($0, $1) }
            #expect(r[0] == 1 && r[1] == -1 && r[2].isNaN && r[3] == 0 && r[7] == 1 && r[8] == -1)
            let g = run { k.gelu_erf($0, $1) }
            #expect(g[0] == .infinity && g[2].isNaN && g[3] == 0 && g[7] == 200 && g[8] == 0)
            let s = run { k.silu($0, $1) }
            #expect(s[0] == .infinity && s[2].isNaN && s[3] == 0 && s[7] == 200 && s[8] == 0)
            #expect(abs(Double(s[5]) - 0.5e-30) <= 1e-36)
        }
    }

    @Test func siluMultiplyMatchesReference() {
        var rng = TestRandom(seed: 4)
        let n = 1000 + 5
        let gate = rng.floats(n, -30, 30), up = rng.floats(n, -3, 3)
        var out = gate
        out.withUnsafeMutableBufferPointer { Activation.siluMultiply($0.baseAddress!, by: up, count: n, threads: 2) }
        var worst = 0.0
        for i in 0..<n { worst = max(worst, ulpDistance(out[i], Self.silu(gate[i]) * Double(up[i]))) }
        #expect(worst <= 4, "silu·up: \(worst) ulp")
    }

    static func softmaxReference(_ row: ArraySlice<Float>) -> [Double] {
        let m = Double(row.max() ?? 0)
        let e = row.map { exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    @Test(arguments: [1, 2, 15, 16, 17, 33, 577, 4097])
    func softmaxMatchesReference(cols: Int) {
        var rng = TestRandom(seed: UInt64(cols))
        let rows = 5
        var x = rng.floats(rows * cols, -20, 20)
        if cols > 1 { x[0] = -.infinity }   // a masked entry
        let input = x
        for k in Self.tables {
            var y = input
            y.withUnsafeMutableBufferPointer { b in
                for r in 0..<rows { k.softmax(b.baseAddress! + r * cols, cols) }
            }
            for r in 0..<rows {
                let ref = Self.softmaxReference(input[(r * cols)..<((r + 1) * cols)])
                // exp(x − max) with x − max rounded to float (as in PyTorch): relative error
                // ≤ |x − max|·2⁻²⁴ from that rounding, plus ≤ 1 ulp (exp) and 1 ulp (1/sum, multiply).
                let row = input[(r * cols)..<((r + 1) * cols)]
                let m = row.max() ?? 0
                var excess = 0.0, sum = 0.0
                for (j, v) in row.enumerated() {
                    let got = Double(y[r * cols + j])
                    if ref[j] == 0 {
                        excess = max(excess, got == 0 ? 0 : .infinity)
                    } else {
                        let allowed = ref[j] * (3 + Double(abs(v - m))) * 0x1p-24
                        excess = max(excess, abs(got - ref[j]) / allowed)
                    }
                    sum += got
                }
                #expect(excess <= 1, "cols \(cols) row \(r): error \(excess)× the allowed bound")
                #expect(abs(sum - 1) <= 1e-5)
            }
        }
    }

    @Test func softmaxOfAllMinusInfinityIsZero() {
        var x = [Float](repeating: -.infinity, count: 21)
        x.withUnsafeMutableBufferPointer { Activation.softmaxRows($0.baseAddress!, rows: 3, cols: 7) }
        #expect(x.allSatisfy { $0 == 0 })
    }

    @Test func wrappersDoNotDependOnThreads() {
        var rng = TestRandom(seed: 8)
        let n = 300_001
        let x = rng.floats(n, -8, 8)
        func run(_ threads: Int, _ f: (UnsafeMutablePointer<Float>, Int, Int) -> Void) -> [Float] {
            var v = x
            v.withUnsafeMutableBufferPointer { f($0.baseAddress!, n, threads) }
            return v
        }
        for f: (UnsafeMutablePointer<Float>, Int, Int) -> Void in [
            { Activation.geluErf($0, count: $1, threads: $2) },
            { Activation.quickGelu($0, count: $1, threads: $2) },
            { Activation.silu($0, count: $1, threads: $2) },
            { Activation.softmaxRows($0, rows: 300, cols: 1000, threads: $2) },
        ] {
            let one = run(1, f)
            #expect(firstDifference(run(2, f), one) == nil)
            #expect(firstDifference(run(3, f), one) == nil)
        }
    }
}
