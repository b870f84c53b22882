import CLlavaUHD
import LlavaUHD
import TestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The OpenBLAS loader (Sources/CLlavaUHD/blas_loader.c) and sgemm.
@Suite struct BLASTests {
    @Test func loadsFastKernelsForThisCPU() throws {
        try BLAS.load()
        let core = BLAS.coreName
        let preferred = BLAS.preferredCoreType
        let f = luhd_cpu().pointee
        print("OpenBLAS: \(BLAS.description); preferred \(preferred); isa \(VectorKernels.isa)")
        #expect(!core.isEmpty)
        #expect(BLAS.description.contains(core))
        if f.avx512f != 0, f.avx512bw != 0, f.avx512vl != 0, f.avx512dq != 0 {
            #expect(preferred == (f.avx512_bf16 != 0 ? "Cooperlake" : "SkylakeX"))
        } else if f.avx2 != 0, f.fma != 0 {
            #expect(preferred == "Haswell")
        }
        let env = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) } ?? ""
        if env.isEmpty, !preferred.isEmpty {
            // Nobody chose for us: the library must have picked the fast kernels...
            let fast: Set<String> = preferred == "Haswell"
                ? ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]
                : ["SkylakeX", "Cooperlake", "SapphireRapids"]
            #expect(fast.contains(core), "OpenBLAS runs \(core) on a CPU that wants \(preferred)")
            // ...and put the environment back as it found it.
            #expect(getenv("OPENBLAS_CORETYPE") == nil || env.isEmpty)
        }
    }

    /// C = alpha·op(A)·op(B) + beta·C in double, row-major.
    static func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                          b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * ldc)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                out[i * ldc + j] = Double(alpha) * s + Double(beta) * Double(c[i * ldc + j])
            }
        }
        return out
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func sgemmMatchesDoubleReference(transA: Bool, transB: Bool) throws {
        try BLAS.load()
        var rng = TestRandom(seed: 7)
        let m = 37, n = 53, k = 129
        let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 5
        let a = rng.floats((transA ? k : m) * lda), b = rng.floats((transB ? n : k) * ldb)
        let c0 = rng.floats(m * ldc)
        let ref = Self.reference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                                 b: b, ldb: ldb, beta: 0.5, c: c0, ldc: ldc)
        for useReferenceLoop in [false, true] {
            var c = c0
            c.withUnsafeMutableBufferPointer { cb in
                if useReferenceLoop {
                    luhd_sgemm_reference(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 0.75, a, Int32(lda),
                                         b, Int32(ldb), 0.5, cb.baseAddress!, Int32(ldc))
                } else {
                    BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                               b: b, ldb: ldb, beta: 0.5, c: cb.baseAddress!, ldc: ldc)
                }
            }
            // |a|,|b| ≤ 1, k = 129: fp32 accumulation error ≤ ~k·2⁻²⁴ relative to the scale.
            var worst = 0.0
            for i in 0..<m { for j in 0..<n { worst = max(worst, abs(Double(c[i * ldc + j]) - ref[i * ldc + j])) } }
            #expect(worst <= 1e-5, "max abs error \(worst) (reference loop: \(useReferenceLoop))")
            // Padding columns are untouched.
            for i in 0..<m { for j in n..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j]) } }
        }
    }

    @Test func sgemmDoesNotDependOnThreads() throws {
        try BLAS.load()
        #expect(BLAS.threads == 1 || luhd_blas_owns_threads() == 0)
        var rng = TestRandom(seed: 11)
        let m = 1700, n = 1300, k = 129   // 2 × 3 blocks
        let a = rng.floats(m * k), b = rng.floats(n * k)
        func run(_ threads: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            c.withUnsafeMutableBufferPointer { cb in
                BLAS.sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: cb.baseAddress!, ldc: n,
                           threads: threads)
            }
            return c
        }
        let one = run(1)
        #expect(firstDifference(run(2), one) == nil)
        #expect(firstDifference(run(3), one) == nil)
    }

    /// `sgemm(wholeRows: true)` (the ViT's products): an even number of balanced blocks of whole
    /// rows, the same results on any thread count, within the float32 bound of the double product.
    @Test func wholeRowBlocksDoNotDependOnThreads() throws {
        try BLAS.load()
        #expect(BLAS.wholeRowBlockShape(m: 1700, n: 1300, k: 129) == (850, 1300))
        #expect(BLAS.wholeRowBlockShape(m: 3847, n: 3072, k: 1024) == (962, 3072))
        #expect(BLAS.wholeRowBlockShape(m: 1024, n: 5000, k: 1024) == (1024, 512))   // wider: `blockShape`
        var rng = TestRandom(seed: 13)
        let m = 1700, n = 1300, k = 129
        let a = rng.floats(m * k), b = rng.floats(n * k)
        func run(_ threads: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            c.withUnsafeMutableBufferPointer { cb in
                BLAS.sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: cb.baseAddress!, ldc: n,
                           threads: threads, wholeRows: true)
            }
            return c
        }
        let one = run(1)
        #expect(firstDifference(run(2), one) == nil)
        #expect(firstDifference(run(3), one) == nil)
        // Rows on both sides of the block boundary (849 | 850) and the last one, against double.
        var worst = 0.0
        for i in [0, 849, 850, m - 1] {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[j * k + p]) }
                worst = max(worst, abs(Double(one[i * n + j]) - s))
            }
        }
        #expect(worst <= 1e-5, "max abs error \(worst)")
    }

    @Test func concurrentSgemmCallsFromSeveralThreads() throws {
        try BLAS.load()
        var rng = TestRandom(seed: 13)
        let m = 64, n = 96, k = 200
        let a = rng.floats(m * k), b = rng.floats(k * n)
        var expected = [Float](repeating: 0, count: m * n)
        expected.withUnsafeMutableBufferPointer { cb in
            BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: cb.baseAddress!, ldc: n)
        }
        let mismatches = Atomic<Int>(0)
        let expectedCopy = expected
        onThreads(4) { _ in
            for _ in 0..<40 {
                var c = [Float](repeating: 0, count: m * n)
                c.withUnsafeMutableBufferPointer { cb in
                    BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: cb.baseAddress!, ldc: n)
                }
                if firstDifference(c, expectedCopy) != nil { mismatches.add(1, ordering: .relaxed) }
            }
        }
        #expect(mismatches.load(ordering: .relaxed) == 0)
    }
}
