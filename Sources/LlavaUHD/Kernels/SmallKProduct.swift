import CLlavaUHD

/// Row-major `C[m×n] = A[m×k]·B[k×n]` for a small k: the Hiwin window attention's mixing
/// (k = keys of one view's window) and its key-space queries (k = head dim), where OpenBLAS
/// spends more on packing and on passes over C than on the products. With AVX-512,
/// `luhd_proj_small_k_product` (A and B read in place, C written once, every value summed in
/// k-order from zero with one fused multiply-add per term) for k ≤ 512; otherwise `BLAS.sgemm` on
/// one thread.
/// Runs on the calling thread: callers split the rows or the calls across threads.
package enum SmallKProduct {
    /// Whether the AVX-512 kernel runs on this CPU for k ≤ 512 (otherwise `multiply` calls
    /// `BLAS.sgemm`).
    package static var usesKernel: Bool { luhd_kernels_avx512() != nil }

    /// With `streamingOutput`, C's whole aligned cache lines are written past the cache (for a
    /// large C not read again soon: the mixing); the values are the same.
    package static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                                 ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, streamingOutput: Bool = false) {
        guard m > 0, n > 0 else { return }
        if luhd_proj_small_k_product(m, n, k, a, lda, b, ldb, c, ldc, streamingOutput ? 1 : 0) == 0 {
            BLAS.sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, threads: 1)
        }
    }

    /// `multiply` with B in BF16 (`b[t·ldb + j]`, widened exactly): the same results as widening
    /// B first. Without the kernel, B is widened into a temporary and `multiply` runs.
    package static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, bf16 b: UnsafePointer<UInt16>,
                                 ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if luhd_proj_small_k_product_bf16(m, n, k, a, lda, b, ldb, c, ldc) == 0 {
            let wide = UnsafeMutablePointer<Float>.allocate(capacity: max(1, k * n))
            defer { wide.deallocate() }
            for t in 0..<k { FloatConversion.widenBFloat16(b + t * ldb, count: n, into: wide + t * n) }
            multiply(m: m, n: n, k: k, a: a, lda: lda, b: wide, ldb: n, c: c, ldc: ldc)
        }
    }
}
