import CLlavaUHD

/// OpenBLAS, loaded on first use with the kernel set chosen for this CPU (see
/// Sources/CLlavaUHD/blas_loader.c for why it is not linked directly).
public enum BLAS {
    /// Loads OpenBLAS if needed. Throws `.io` when libopenblas.so.0 cannot be loaded.
    public static func load() throws(LlavaError) {
        guard luhd_blas_load() == 0 else { throw LlavaError(.io, String(cString: luhd_blas_error())) }
    }

    /// The kernel set OpenBLAS uses ("SkylakeX", "Cooperlake", "Haswell", "Prescott", ...).
    public static var coreName: String { String(cString: luhd_blas_corename()) }

    /// What the library set OPENBLAS_CORETYPE to before loading OpenBLAS ("" when the host set
    /// it, or OpenBLAS was already loaded by the host).
    public static var coreTypeChosen: String { String(cString: luhd_blas_coretype_set()) }

    /// OpenBLAS's own thread count (process-wide).
    public static var threads: Int {
        get { Int(luhd_blas_get_threads()) }
        set { luhd_blas_set_threads(Int32(newValue)) }
    }

    /// Row-major `C[m×n] = alpha·op(A)·op(B) + beta·C`, where `op(A)` is m×k and `op(B)` k×n.
    /// `load()` must have succeeded.
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        luhd_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                   b, Int32(ldb), beta, c, Int32(ldc))
    }
}
