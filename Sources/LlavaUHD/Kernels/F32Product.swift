import CLlavaUHD

/// Float32 matrix products `y = x · Wᵀ` against a weight packed in panels of 32 output columns
/// (AVX-512; see Sources/CLlavaUHD/include/f32_gemm.h): 14 rows × 32 columns per micro-kernel
/// call, x packed per block (or read in place), y written directly. Every output is one chain
/// of fused multiply-adds over k in order, so results do not depend on how callers split rows
/// or panels over threads. Used where packing is cheap against the product and OpenBLAS's
/// per-call packing of both operands is not (the ViT attention: k = 64 for the scores, n = 64
/// for the mixing).
package enum F32Product {
    /// True when this CPU has AVX-512 F.
    package static let isAvailable = luhd_f32_gemm_available() != 0

    /// Output columns per packed panel.
    static let panelWidth = 32

    /// Panels of a weight with `n` output columns.
    static func panels(_ n: Int) -> Int { (n + panelWidth - 1) / panelWidth }

    /// Floats of a packed weight with `n` outputs over `k` (a multiple of 16: 64-byte blocks).
    static func packedFloats(k: Int, n: Int) -> Int { luhd_f32_gemm_packed_floats(k, n) }

    /// Floats of the buffer `multiply` packs blocks of `rows` rows of x into.
    static func packingFloats(rows: Int) -> Int { luhd_f32_gemm_x_floats(rows) }

    /// Packs `W[n, k]` (float32, row stride `ldw`) into `packed` (64-byte aligned,
    /// `packedFloats(k:n:)`).
    static func pack(_ w: UnsafePointer<Float>, ldw: Int, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
        luhd_f32_gemm_pack_w(w, 0, ldw, k, n, 0, panels(n), packed)
    }

    /// Packs `W` given transposed, `B[k, n]` (row stride `ldb`): the right-hand matrix of `x · B`.
    static func pack(transposed b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
        luhd_f32_gemm_pack_wt(b, ldb, k, n, 0, panels(n), packed)
    }

    /// `y[i, c] = Σⱼ x[i, j] · W[c, j]` for `rows` rows and all `n` columns, one thread.
    /// `packing`: `packingFloats(rows:)` floats (64-byte aligned) to pack x into, or nil to read x
    /// in place (a row stride that is not a multiple of 1 KB).
    static func multiply(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, packed: UnsafePointer<Float>, k: Int, n: Int,
                         into y: UnsafeMutablePointer<Float>, ldy: Int, packing: UnsafeMutablePointer<Float>?) {
        luhd_f32_gemm(x, ldx, 0, rows, packed, k, n, 0, panels(n), y, ldy, packing)
    }
}
