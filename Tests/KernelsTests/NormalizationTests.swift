import CLlavaUHD
import LlavaUHD
import TestSupport
import Testing

/// LayerNorm and RMSNorm (both instruction-set variants and the threaded wrappers) against
/// double-precision references.
@Suite struct NormalizationTests {
    static func layerNormReference(_ x: ArraySlice<Float>, _ gamma: [Float], _ beta: [Float]?, _ eps: Float) -> [Double] {
        let n = Double(x.count)
        let mean = x.reduce(0.0) { $0 + Double($1) } / n
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let rstd = 1 / (variance + Double(eps)).squareRoot()
        return x.enumerated().map { j, v in (Double(v) - mean) * rstd * Double(gamma[j]) + Double(beta?[j] ?? 0) }
    }

    static func rmsNormReference(_ x: ArraySlice<Float>, _ gamma: [Float], _ eps: Float) -> [Double] {
        let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        let rstd = 1 / (ms + Double(eps)).squareRoot()
        return x.enumerated().map { j, v in Double(v) * rstd * Double(gamma[j]) }
    }

    // Per element the kernels round the mean and 1/std to float and do 2-3 float operations:
    // error ≤ a few 2⁻²⁴ of |x − mean|·rstd·|gamma| + |beta|; relative to the row's scale:
    static let tolerance = 1e-6

    @Test(arguments: [1, 7, 16, 31, 1024, 4097])
    func layerNormMatchesReference(cols: Int) {
        var rng = TestRandom(seed: UInt64(cols) + 1)
        let rows = 6
        // An offset mean and outlier channels, as in CLIP's residual stream.
        var x = rng.floats(rows * cols, -3, 3).map { $0 + 40 }
        for i in stride(from: 0, to: x.count, by: 97) { x[i] *= 25 }
        let gamma = rng.floats(cols, 0.5, 1.5), beta = rng.floats(cols)
        var worst = 0.0
        for k in [luhd_kernels_avx2(), luhd_kernels_avx512()].compactMap({ $0?.pointee }) {
            for withBeta in [true, false] {
                var y = [Float](repeating: .nan, count: rows * cols)
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        beta.withUnsafeBufferPointer { bb in
                            for r in 0..<rows {
                                k.layer_norm(xb.baseAddress! + r * cols, cols, gamma, withBeta ? bb.baseAddress : nil, 1e-5,
                                             yb.baseAddress! + r * cols)
                            }
                        }
                    }
                }
                for r in 0..<rows {
                    let ref = Self.layerNormReference(x[(r * cols)..<((r + 1) * cols)], gamma, withBeta ? beta : nil, 1e-5)
                    let err = relativeError(Array(y[(r * cols)..<((r + 1) * cols)]), ref)
                    #expect(err <= Self.tolerance, "\(String(cString: k.isa)) cols \(cols): \(err)")
                    worst = max(worst, err)
                }
            }
        }
        print("layer norm, \(cols) columns: worst relative error \(worst)")
    }

    @Test(arguments: [1, 9, 4096, 3584 + 3])
    func rmsNormMatchesReference(cols: Int) {
        var rng = TestRandom(seed: UInt64(cols) + 2)
        let rows = 4
        let x = rng.floats(rows * cols, -2, 2)
        let gamma = rng.floats(cols, 0.1, 2)
        var worst = 0.0
        for k in [luhd_kernels_avx2(), luhd_kernels_avx512()].compactMap({ $0?.pointee }) {
            var y = x   // in place
            y.withUnsafeMutableBufferPointer { yb in
                for r in 0..<rows { k.rms_norm(yb.baseAddress! + r * cols, cols, gamma, 1e-6, yb.baseAddress! + r * cols) }
            }
            for r in 0..<rows {
                let ref = Self.rmsNormReference(x[(r * cols)..<((r + 1) * cols)], gamma, 1e-6)
                let err = relativeError(Array(y[(r * cols)..<((r + 1) * cols)]), ref)
                #expect(err <= Self.tolerance, "\(String(cString: k.isa)) cols \(cols): \(err)")
                worst = max(worst, err)
            }
        }
        print("RMS norm, \(cols) columns: worst relative error \(worst)")
    }

    @Test func wrappersDoNotDependOnThreads() {
        var rng = TestRandom(seed: 12)
        let rows = 577, cols = 1024
        let x = rng.floats(rows * cols, -4, 4), gamma = rng.floats(cols), beta = rng.floats(cols)
        func run(_ threads: Int) -> ([Float], [Float]) {
            var a = [Float](repeating: 0, count: rows * cols), b = a
            a.withUnsafeMutableBufferPointer { o in
                Normalization.layerNorm(x, rows: rows, cols: cols, gamma: gamma, beta: beta, eps: 1e-5,
                                        into: o.baseAddress!, threads: threads)
            }
            b.withUnsafeMutableBufferPointer { o in
                Normalization.rmsNorm(x, rows: rows, cols: cols, gamma: gamma, eps: 1e-5, into: o.baseAddress!, threads: threads)
            }
            return (a, b)
        }
        let one = run(1)
        for t in [2, 3] {
            let other = run(t)
            #expect(firstDifference(other.0, one.0) == nil && firstDifference(other.1, one.1) == nil, "threads \(t)")
        }
        let ref = Self.layerNormReference(x[0..<cols], gamma, beta, 1e-5)
        #expect(relativeError(Array(one.0[0..<cols]), ref) <= Self.tolerance)
    }
}
