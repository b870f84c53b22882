import LlavaUHD
import Testing
import TestSupport

/// Int8 products against a load-time Q8_0 copy of dense weights (`Int8Product`,
/// `MatrixArithmetic.int8`) on random data, against float64 references:
/// - the copy is GGML's Q8_0 of each weight, stacked by rows, whatever the thread count;
/// - the int8 VNNI product (forced, whatever the CPU's default) computes W~·x~ (W~ the Q8_0
///   values, x~ = dx·round(x/dx) per block of 32, dx = max|x|/127) within float32 summation,
///   |y − W~·x~| ≤ 1e-5·Σ|W~·x~| (its only other error);
/// - both it and the f32 fallback (`.f32AVX2`: the copy dequantized for sgemm) are within the
///   stated bound of the exact product W·x: per output,
///   |y − W·x| ≤ Σₖ |xₖ|·|wₖ − w~ₖ| + Σ_blocks (dx/2)·Σ|w~ₖ| + 1e-5·Σ|w·x|.
/// Shapes: 70 rows (the matrix product, 6-row micro-tiles and a tail), 3 rows (matrix-vector
/// kernels), 50 outputs (16-row tiles and a tail), K = 320 (10 blocks). One row of x holds an
/// outlier (a block scale 100 times the others). The VNNI case is skipped on CPUs without
/// AVX-512 VNNI; the fallback runs everywhere.
@Suite struct Int8ProductTests {
    static let k = 320

    static func weights(rows: Int, seed: UInt64) -> (TensorView, [Float]) {
        var rng = TestRandom(seed: seed)
        let values = rng.floats(rows * k, -0.1, 0.1)
        return makeTensor(values, shape: [rows, k], dtype: .bf16)
    }

    @Test func copyIsQ8OfEachWeightStacked() throws {
        let (a, av) = Self.weights(rows: 30, seed: 1), (b, bv) = Self.weights(rows: 20, seed: 2)
        let one = try #require(Int8Product.quantize([a, b], threads: 1))
        let three = try #require(Int8Product.quantize([a, b], threads: 3))
        #expect(one.format == .q8_0 && one.rows == 50 && one.columns == Self.k)
        let ref = try QuantizedMatrix.quantize(av + bv, rows: 50, columns: Self.k, format: .q8_0)
        let bytes = { (q: QuantizedMatrix) in [UInt8](UnsafeRawBufferPointer(start: q.data, count: q.byteCount)) }
        #expect(bytes(one) == bytes(ref))
        #expect(bytes(three) == bytes(ref))
        // A row length that is not a multiple of 32 has no copy (its products stay float32).
        let (odd, _) = makeTensor([Float](repeating: 0.5, count: 4 * 48), shape: [4, 48], dtype: .f32)
        #expect(Int8Product.quantize([odd], threads: 1) == nil)
    }

    @Test(arguments: [QuantKernel.int8VNNI, .f32AVX2], [70, 3])
    func withinTheStatedBound(kernel: QuantKernel, rows m: Int) throws {
        try #require(QuantKernel.f32AVX2.isAvailable)
        guard kernel.isAvailable else {
            print("Int8Product: \(kernel) not available on this CPU, not run")
            return
        }
        let n = 50, k = Self.k
        let (a, av) = Self.weights(rows: 30, seed: 3), (b, bv) = Self.weights(rows: 20, seed: 4)
        let w = av + bv
        let q = try #require(Int8Product.quantize([a, b], threads: 2))
        let wq = q.dequantized()
        var rng = TestRandom(seed: 5)
        var x = rng.floats(m * k, -2, 2)
        x[k + 40] = 300   // row 1, block 1: an outlier
        try BLAS.load()
        var y = [Float](repeating: 0, count: m * n), y1 = y
        MatMul.linear(x, rows: m, weight: q, into: &y, context: ComputeContext(threads: 2), kernel: kernel)
        MatMul.linear(x, rows: m, weight: q, into: &y1, context: ComputeContext(threads: 1), kernel: kernel)
        #expect(y == y1, "results depend on the thread count")

        var worstOfBound = 0.0, worstQuantized = 0.0, worstRelative = 0.0, maxRef = 0.0
        for i in 0..<m {
            let (xq, dx) = int8Image(Array(x[(i * k)..<((i + 1) * k)]))
            for r in 0..<n {
                var exact = 0.0, absExact = 0.0, onQuantized = 0.0, absQuantized = 0.0, bound = 0.0
                for j in 0..<k {
                    let xv = Double(x[i * k + j]), wv = Double(w[r * k + j]), wqv = Double(wq[r * k + j])
                    exact += xv * wv
                    absExact += abs(xv * wv)
                    onQuantized += Double(xq[j]) * wqv
                    absQuantized += abs(Double(xq[j]) * wqv)
                    bound += abs(xv) * abs(wv - wqv) + Double(dx[j / 32]) / 2 * abs(wqv)
                }
                bound += 1e-5 * absExact
                let got = Double(y[i * n + r])
                worstOfBound = max(worstOfBound, abs(got - exact) / bound)
                worstQuantized = max(worstQuantized, abs(got - onQuantized) / absQuantized)
                worstRelative = max(worstRelative, abs(got - exact))
                maxRef = max(maxRef, abs(exact))
            }
        }
        print("Int8Product \(kernel), \(m) rows: |y − W·x| at most \(worstOfBound) of the stated bound; "
              + "max|y − W·x| / max|W·x| = \(worstRelative / maxRef); |y − W~·x~| / Σ|W~·x~| ≤ \(worstQuantized)")
        #expect(worstOfBound <= 1, "beyond the stated bound: \(worstOfBound)")
        if kernel == .int8VNNI {
            #expect(worstQuantized <= 1e-5, "the VNNI product is not W~·x~: \(worstQuantized)")
        }
    }
}
