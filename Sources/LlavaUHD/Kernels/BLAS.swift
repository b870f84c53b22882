import CLlavaUHD

/// OpenBLAS, loaded on first use with the kernel set chosen for this CPU, whatever the host
/// process did before (see Sources/CLlavaUHD/include/blas_loader.h for why it is never linked
/// and how a host that already loaded a mis-detected OpenBLAS is handled).
package enum BLAS {
    /// Loads OpenBLAS if needed. Throws `.io` when libopenblas.so.0 cannot be loaded.
    package static func load() throws(LlavaError) {
        guard luhd_blas_load() == 0 else { throw LlavaError(.io, String(cString: luhd_blas_error())) }
    }

    /// The kernel set OpenBLAS uses ("SkylakeX", "Cooperlake", "Haswell", "Prescott", ...), or
    /// "" when it cannot be loaded.
    package static var coreName: String { String(cString: luhd_blas_corename()) }

    /// The kernel set the library considers right for this CPU ("Cooperlake", "SkylakeX",
    /// "Haswell"; "" without AVX2).
    package static var preferredCoreType: String { String(cString: luhd_blas_preferred_coretype()) }

    /// One line for logs and benchmarks: OpenBLAS's configuration, its kernel set, and how it was
    /// chosen ("" before loading).
    package static var description: String {
        _ = luhd_blas_load()
        return String(cString: luhd_blas_description())
    }

    /// OpenBLAS's own thread count for each call: 1 when the library runs its own copy (it
    /// parallelises over blocks itself, see `sgemm`); the host's setting otherwise.
    package static var threads: Int { Int(luhd_blas_get_threads()) }

    /// Row-major `C[m×n] = alpha·op(A)·op(B) + beta·C`, where `op(A)` is m×k and `op(B)` k×n.
    ///
    /// The product is split into fixed blocks of C that depend only on the shape (see
    /// `blockShape`), each computed by one single-threaded OpenBLAS call, and the blocks are run
    /// on up to `threads` threads (`parallelFor`; inline when called from inside a parallel
    /// task). OpenBLAS's results depend on how a product is partitioned, so this keeps results
    /// independent of `threads`. Loads OpenBLAS if needed; without it a plain loop computes
    /// the same product (slowly) rather than failing.
    package static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             threads: Int = ComputeContext.defaultThreads, wholeRows: Bool = false) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let (mb, nb) = wholeRows ? wholeRowBlockShape(m: m, n: n, k: k) : blockShape(m: m, n: n, k: k)
        let rowBlocks = (m + mb - 1) / mb, colBlocks = (n + nb - 1) / nb
        let cp = SendablePointer(c)
        // With the host's copy of OpenBLAS (multi-threaded by its own settings), blocks run in
        // turn; with ours (one thread per call) or without OpenBLAS (the plain loop), in parallel.
        let parallel = callsRunInParallel ? threads : 1
        parallelFor(rowBlocks * colBlocks, threads: parallel) { block in
            let m0 = block / colBlocks * mb, n0 = block % colBlocks * nb
            let mm = min(mb, m - m0), nn = min(nb, n - n0)
            luhd_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(mm), Int32(nn), Int32(k), alpha,
                       transA ? a + m0 : a + m0 * lda, Int32(lda),
                       transB ? b + n0 * ldb : b + n0, Int32(ldb),
                       beta, cp.p + m0 * ldc + n0, Int32(ldc))
        }
    }

    /// True when several threads may call `luhd_sgemm` at once: with the library's own
    /// single-threaded OpenBLAS, or the plain loop when there is none; false when the host
    /// process's OpenBLAS (threaded by its own settings) is in use.
    static var callsRunInParallel: Bool { luhd_blas_load() != 0 || luhd_blas_owns_threads() != 0 }

    /// Rows and columns of the blocks of C that `sgemm` computes with one OpenBLAS call each: a
    /// function of the shape only. Blocks are large (repacking A or B per block costs a few
    /// percent at 512) and products under 2²² multiply-adds stay whole.
    static func blockShape(m: Int, n: Int, k: Int) -> (rows: Int, cols: Int) {
        if m * n * k < 1 << 22 { return (m, n) }
        return (m <= 1536 ? m : 1024, n <= 768 ? n : 512)
    }

    /// The blocks of `sgemm(wholeRows: true)`: whole rows of C (up to `wholeRowColumns`
    /// columns; wider products fall back to `blockShape`), in an even number of blocks of
    /// nearly 1024 rows or fewer (balanced over two threads), a function of the shape only. For
    /// products against a weight (the ViT's q/k/v, out_proj, fc1, fc2): each call packs A once
    /// and B once per row block, where 512-column blocks pack all of A again for every block
    /// (one thread, 1024 rows x 3072 x 1024: 90.6 -> 98.8 GFLOP/s, x 4096 x 1024: 87.3 -> 96.1;
    /// BENCHMARKS.md notes:vit7).
    package static func wholeRowBlockShape(m: Int, n: Int, k: Int) -> (rows: Int, cols: Int) {
        if m * n * k < 1 << 22 { return (m, n) }
        guard n <= wholeRowColumns else { return blockShape(m: m, n: n, k: k) }
        let blocks = max(2, (m + 1023) / 1024 + (m + 1023) / 1024 % 2)
        return (max(1, (m + blocks - 1) / blocks), n)
    }

    /// Widest C that `sgemm(wholeRows: true)` keeps whole.
    static let wholeRowColumns = 4096
}
