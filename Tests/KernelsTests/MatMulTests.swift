import CLlavaUHD
import LlavaUHD
import TestSupport
import Testing

/// `MatMul.linear` (x·Wᵀ) and `MatMul.multiply` (x·W) against double-precision references,
/// for every weight dtype, both the matrix-vector path (m ≤ `MatMul.matvecMaxRows`) and the
/// tiled sgemm path, odd sizes, unaligned weights and thread counts.
@Suite struct MatMulTests {
    /// out[i][r] = Σ_j x[i][j]·W[r][j] in double, from the values the tensor really holds.
    static func linearReference(_ x: [Float], m: Int, w: [Float], n: Int, k: Int, bias: [Float]?) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for r in 0..<n {
                var s = 0.0
                for j in 0..<k { s += Double(x[i * k + j]) * Double(w[r * k + j]) }
                out[i * n + r] = s + Double(bias?[r] ?? 0)
            }
        }
        return out
    }

    /// Tolerance for fp32 sums of k products of values in [-1, 1], relative to the output scale
    /// (~√k for random signs): a few k·2⁻²⁴ worst-case bounds are far looser than needed, so
    /// this states the measured order of magnitude with a margin.
    static let tolerance = 2e-6

    static let dtypes: [DType] = [.f32, .f16, .bf16]

    @Test(arguments: dtypes, [1, 2, 3, 4, 5, 9, 17, 64, 65, 100])
    func linearMatchesDoubleReference(dtype: DType, m: Int) {
        var rng = TestRandom(seed: UInt64(m * 31 + dtype.size))
        let n = 203, k = 517
        let (w, exact) = makeTensor(rng.floats(n * k), shape: [n, k], dtype: dtype, misalignment: dtype == .f32 ? 4 : 2)
        let x = rng.floats(m * k)
        let bias = rng.floats(n)
        let ref = Self.linearReference(x, m: m, w: exact, n: n, k: k, bias: bias)
        var results: [[Float]] = []
        var worst = 0.0
        for threads in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: m * n)
            out.withUnsafeMutableBufferPointer { o in
                MatMul.linear(x, rows: m, weight: w, into: o.baseAddress!, bias: bias,
                              context: ComputeContext(threads: threads))
            }
            let err = relativeError(out, ref)
            #expect(err <= Self.tolerance, "\(dtype) m=\(m) threads=\(threads): relative error \(err)")
            worst = max(worst, err)
            results.append(out)
        }
        print("linear \(dtype) m=\(m) (\(m <= MatMul.matvecMaxRows ? "matrix-vector" : "sgemm")): relative error \(worst)")
        #expect(firstDifference(results[1], results[0]) == nil && firstDifference(results[2], results[0]) == nil,
                "results depend on the thread count")
    }

    @Test(arguments: dtypes)
    func linearWithRowStrideAndUnalignedF32(dtype: DType) {
        var rng = TestRandom(seed: 5)
        let n = 64, k = 33, ld = 80
        // Misaligned by 2 bytes: F32 data no longer 4-byte aligned, so the copy path runs.
        let (w, exact) = makeTensor(rng.floats(n * k), shape: [n, k], dtype: dtype, misalignment: 2)
        for m in [1, 3, 70] {
            let x = rng.floats(m * k)
            let ref = Self.linearReference(x, m: m, w: exact, n: n, k: k, bias: nil)
            var out = [Float](repeating: -7, count: m * ld)
            out.withUnsafeMutableBufferPointer { o in
                MatMul.linear(x, rows: m, weight: w, into: o.baseAddress!, ldOut: ld, context: ComputeContext(threads: 2))
            }
            var got = [Float](), untouched = true
            for i in 0..<m {
                got += out[(i * ld)..<(i * ld + n)]
                untouched = untouched && out[(i * ld + n)..<(i * ld + ld)].allSatisfy { $0 == -7 }
            }
            #expect(relativeError(got, ref) <= Self.tolerance, "\(dtype) m=\(m)")
            #expect(untouched, "columns past N were written")
        }
    }

    @Test func largeShapeUsesSeveralTiles() {
        // K large enough that the widened tile holds fewer rows than N (several sgemm calls).
        var rng = TestRandom(seed: 3)
        let n = 700, k = 4100, m = 80
        let (w, exact) = makeTensor(rng.floats(n * k), shape: [n, k], dtype: .bf16)
        let x = rng.floats(m * k)
        let ref = Self.linearReference(x, m: m, w: exact, n: n, k: k, bias: nil)
        var out = [Float](repeating: 0, count: m * n)
        out.withUnsafeMutableBufferPointer { o in
            MatMul.linear(x, rows: m, weight: w, into: o.baseAddress!, context: ComputeContext(threads: 2))
        }
        #expect(relativeError(out, ref) <= Self.tolerance)
    }

    @Test(arguments: dtypes, [1, 7, 144])
    func multiplyMatchesDoubleReference(dtype: DType, m: Int) {
        var rng = TestRandom(seed: UInt64(m + 100))
        let k = 150, n = 611
        let (w, exact) = makeTensor(rng.floats(k * n), shape: [k, n], dtype: dtype, misalignment: 2)
        let x = rng.floats(m * k)
        var ref = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(x[i * k + p]) * Double(exact[p * n + j]) }
                ref[i * n + j] = s
            }
        }
        var first: [Float]?
        for threads in [1, 2] {
            var out = [Float](repeating: .nan, count: m * n)
            out.withUnsafeMutableBufferPointer { o in
                MatMul.multiply(x, rows: m, by: w, into: o.baseAddress!, context: ComputeContext(threads: threads))
            }
            #expect(relativeError(out, ref) <= Self.tolerance, "\(dtype) m=\(m) threads=\(threads)")
            if let first { #expect(firstDifference(out, first) == nil, "results depend on the thread count") }
            first = out
        }
    }

    @Test(arguments: dtypes)
    func matvecKernelsOfEveryInstructionSet(dtype: DType) {
        // The kernels directly, on a row range that starts and ends off the block boundaries,
        // for each vector count (the row-block size depends on it).
        var rng = TestRandom(seed: 17)
        let n = 61, k = 131, r0 = 3, r1 = 58
        let (w, exact) = makeTensor(rng.floats(n * k), shape: [n, k], dtype: dtype, misalignment: 2)
        for table in [luhd_kernels_avx2(), luhd_kernels_avx512()].compactMap({ $0?.pointee }) {
            for m in [1, 2, 3, 4, 5, 8, 9] {
                let x = rng.floats(m * k)
                let ref = Self.linearReference(x, m: m, w: exact, n: n, k: k, bias: nil)
                var y = [Float](repeating: .nan, count: m * n)
                y.withUnsafeMutableBufferPointer { yb in
                    let y = yb.baseAddress!
                    switch dtype {
                    case .f32: table.matvec_f32(w.data.assumingMemoryBound(to: Float.self), k, r0, r1, x, k, m, y, n)
                    case .f16: table.matvec_f16(w.data.assumingMemoryBound(to: UInt16.self), k, r0, r1, x, k, m, y, n)
                    default: table.matvec_bf16(w.data.assumingMemoryBound(to: UInt16.self), k, r0, r1, x, k, m, y, n)
                    }
                }
                var got: [Float] = [], want: [Double] = [], untouched = true
                for i in 0..<m {
                    for r in 0..<n {
                        if r >= r0, r < r1 { got.append(y[i * n + r]); want.append(ref[i * n + r]) } else { untouched = untouched && y[i * n + r].isNaN }
                    }
                }
                #expect(relativeError(got, want) <= Self.tolerance, "\(String(cString: table.isa)) \(dtype) m=\(m)")
                #expect(untouched, "rows outside [r0, r1) were written")
            }
        }
    }

    @Test func emptyInnerDimensionGivesBias() {
        let (w, _) = makeTensor([], shape: [5, 0], dtype: .bf16)
        let bias: [Float] = [1, 2, 3, 4, 5]
        for m in [1, 30] {
            var out = [Float](repeating: .nan, count: m * 5)
            out.withUnsafeMutableBufferPointer { o in
                MatMul.linear([Float](repeating: 0, count: 1), rows: m, weight: w, into: o.baseAddress!, bias: bias,
                              context: ComputeContext(threads: 2))
            }
            #expect(firstDifference(out, Array((0..<m).map { _ in bias }.joined())) == nil)
        }
    }
}
