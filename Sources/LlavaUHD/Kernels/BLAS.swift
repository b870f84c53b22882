import CLlavaUHD

/// OpenBLAS, loaded on first use with the kernel set chosen for this CPU, whatever the host
/// process did before (see Sources/CLlavaUHD/include/blas_loader.h for why it is never linked
/// and how a host that already loaded a mis-detected OpenBLAS is handled).
public enum BLAS {
    /// Loads OpenBLAS if needed. Throws `.io` when libopenblas.so.0 cannot be loaded.
    public static func load() throws(LlavaError) {
        guard luhd_blas_load() == 0 else { throw LlavaError(.io, String(cString: luhd_blas_error())) }
    }

    /// The kernel set OpenBLAS uses ("SkylakeX", "Cooperlake", "Haswell", "Prescott", ...), or
    /// "" when it cannot be loaded.
    public static var coreName: String { String(cString: luhd_blas_corename()) }

    /// The kernel set the library asked for through OPENBLAS_CORETYPE when loading OpenBLAS
    /// ("" when the host had set the variable, or the CPU lacks AVX2).
    public static var coreTypeChosen: String { String(cString: luhd_blas_coretype_set()) }

    /// The kernel set the library considers right for this CPU ("Cooperlake", "SkylakeX",
    /// "Haswell"; "" without AVX2).
    public static var preferredCoreType: String { String(cString: luhd_blas_preferred_coretype()) }

    /// True when the library runs a private copy of OpenBLAS because the host had already
    /// loaded one with slower kernels.
    public static var isPrivateCopy: Bool { luhd_blas_private_copy() != 0 }

    /// One line for logs and benchmarks: OpenBLAS's configuration, its kernel set, and how it was
    /// chosen ("" before loading).
    public static var description: String {
        _ = luhd_blas_load()
        return String(cString: luhd_blas_description())
    }

    /// OpenBLAS's own thread count (process-wide).
    public static var threads: Int {
        get { Int(luhd_blas_get_threads()) }
        set { luhd_blas_set_threads(Int32(newValue)) }
    }

    /// Row-major `C[m×n] = alpha·op(A)·op(B) + beta·C`, where `op(A)` is m×k and `op(B)` k×n.
    /// `threads`, when given, sets OpenBLAS's thread count first (a process-wide setting; the
    /// product does not depend on it). Loads OpenBLAS if needed; without it a plain loop
    /// computes the same product (slowly) rather than failing.
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        if let threads { luhd_blas_set_threads(Int32(max(1, threads))) }
        luhd_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                   b, Int32(ldb), beta, c, Int32(ldc))
    }
}
