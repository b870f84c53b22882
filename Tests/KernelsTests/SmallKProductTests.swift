import LlavaUHD
import Testing
import TestSupport

/// `SmallKProduct` (Sources/CLlavaUHD/projector_kernels.c with AVX-512: tiles of 8 rows x 32
/// columns, B copied per column strip) against the definition computed one value at a time:
/// `c[i][j] = Σ_t a[i·lda + t]·b[t·ldb + j]`, summed in t-order from zero with fused
/// multiply-adds. With the AVX-512 kernel the two must agree exactly (same operations in the
/// same order); without it (`BLAS.sgemm`, its own order) within 1e-5 of the largest |c|. Shapes
/// leave partial row tiles and column strips, use leading dimensions wider than the rows, and
/// include the window attention's (k = 27 keys, k = 128 head dims).
@Suite struct SmallKProductTests {
    @Test(arguments: [(11, 45, 27), (8, 32, 1), (17, 70, 128), (3, 16, 5), (20, 256, 27), (9, 33, 0)])
    func matchesTheDefinition(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let lda = k + 3, ldb = n + 5, ldc = n + 2
        var random = TestRandom(seed: UInt64(m * 10_000 + n * 100 + k))
        let a = random.floats(m * lda, -1, 1), b = random.floats(max(1, k) * ldb, -1, 1)
        var expected = [Float](repeating: .nan, count: m * ldc)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for t in 0..<k { acc.addProduct(a[i * lda + t], b[t * ldb + j]) }
                expected[i * ldc + j] = acc
            }
        }
        var out = [Float](repeating: .nan, count: m * ldc)
        a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                out.withUnsafeMutableBufferPointer { ob in
                    SmallKProduct.multiply(m: m, n: n, k: k, a: ab.baseAddress!, lda: lda, b: bb.baseAddress!, ldb: ldb,
                                           c: ob.baseAddress!, ldc: ldc)
                }
            }
        }
        let largest = expected.filter { !$0.isNaN }.map(abs).max() ?? 0
        for i in 0..<m {
            for j in 0..<ldc {
                let index = i * ldc + j
                if j >= n {
                    #expect(out[index].isNaN, "\(m)x\(n)x\(k): wrote outside the \(n) columns at (\(i), \(j))")
                } else if SmallKProduct.usesKernel {
                    #expect(out[index] == expected[index], "\(m)x\(n)x\(k) at (\(i), \(j))")
                } else {
                    #expect(abs(out[index] - expected[index]) <= 1e-5 * max(largest, 1), "\(m)x\(n)x\(k) at (\(i), \(j))")
                }
            }
        }
    }

    /// The BF16-B form equals the float32 form on B widened (exactly, with the kernel: the strip
    /// is widened, the sums are the same), and non-temporal stores of C (`streamingOutput`,
    /// aligned C with whole lines, plus a partial strip and row tile) change no value.
    @Test(arguments: [(11, 45, 27), (16, 96, 128), (3, 16, 5)])
    func bf16OperandAndStreamingOutputChangeNoValue(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let lda = k + 3, ldb = n + 5, ldc = (n + 15) / 16 * 16
        var random = TestRandom(seed: UInt64(7 + m * 10_000 + n * 100 + k))
        let a = random.floats(m * lda, -1, 1)
        let b16 = random.floats(k * ldb, -1, 1).map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        let b = b16.map { Float(bitPattern: UInt32($0) << 16) }
        func run(_ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
            let c = UnsafeMutableRawPointer.allocate(byteCount: m * ldc * 4, alignment: 64).bindMemory(to: Float.self, capacity: m * ldc)
            defer { c.deallocate() }
            c.initialize(repeating: .nan, count: m * ldc)
            a.withUnsafeBufferPointer { body($0.baseAddress!, c) }
            return Array(UnsafeBufferPointer(start: c, count: m * ldc))
        }
        let plain = run { a, c in
            b.withUnsafeBufferPointer { SmallKProduct.multiply(m: m, n: n, k: k, a: a, lda: lda, b: $0.baseAddress!, ldb: ldb, c: c, ldc: ldc) }
        }
        let widened = run { a, c in
            b16.withUnsafeBufferPointer { SmallKProduct.multiply(m: m, n: n, k: k, a: a, lda: lda, bf16: $0.baseAddress!, ldb: ldb, c: c, ldc: ldc) }
        }
        let streamed = run { a, c in
            b.withUnsafeBufferPointer {
                SmallKProduct.multiply(m: m, n: n, k: k, a: a, lda: lda, b: $0.baseAddress!, ldb: ldb, c: c, ldc: ldc,
                                       streamingOutput: true)
            }
        }
        #expect(plain.elementsEqual(widened) { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(m)x\(n)x\(k): BF16 B")
        #expect(plain.elementsEqual(streamed) { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(m)x\(n)x\(k): streamed C")
    }
}
