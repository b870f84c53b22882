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

    package static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                                 ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if luhd_proj_small_k_product(m, n, k, a, lda, b, ldb, c, ldc) == 0 {
            BLAS.sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, threads: 1)
        }
    }
}
