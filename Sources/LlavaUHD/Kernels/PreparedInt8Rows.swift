import CLlavaUHD

/// Rows of x prepared for the int8 matrix products of prefill (`MatMul.int8Product`): each row
/// quantized to int8 (dx = max|x|/127 per block, round to nearest even; stored as x + 128 for
/// the VNNI product, signed for the AVX2 one) with the block scales and sums. The image depends
/// on x, the product kernel and the blocking, not on the weights' bytes, so the products that
/// read the same x (q/k/v, gate/up) and take the same kernel and blocking share one
/// (`MatMul.linear(_:rows:weights:...)`).
///
/// Memory per row, rounded up to 64 and owned by this object: VNNI `luhd_quant_gemm_x_bytes(columns, 1)`
/// (blocks of 32: 1.5 bytes per element) or `luhd_quant_gemm_k_x_bytes(columns, 1)` (super-blocks
/// of 256: about 1.08); AVX2 `luhd_quant_gemm_avx2_x_bytes(columns, 1)` (1.375) or
/// `luhd_quant_gemm_k_avx2_x_bytes(columns, 1)` (about 1.2).
package final class PreparedInt8Rows {
    /// How x is quantized, which decides the kernel that multiplies it.
    package enum Blocking: Sendable {
        /// One scale per 32 elements (`luhd_quant_gemm_prepare_x`, the product of the other
        /// block formats `luhd_quant_gemm_tile_columns`, Sources/CLlavaUHD/quant_gemm_vnni.c).
        case blocksOf32
        /// One scale per 256 elements, as llama.cpp's Q8_K for its K-format dot products
        /// (`luhd_quant_gemm_k_prepare_x`, the Q3_K / Q4_K / Q5_K / Q6_K product
        /// `luhd_quant_gemm_k_tile_columns`, quant_gemm_k_vnni.c): the sub-block scales are
        /// applied to exact integer sums, one f32 multiply-add per super-block remains
        /// (+12-23 % in the one-thread kernel on Zen 4, notes:kquant8).
        case superBlocksOf256

        /// The blocking the int8 product of `w` takes with `kernel`: super-blocks for the formats
        /// the kernel's per-256 product implements (`luhd_quant_gemm_k_supports` for VNNI,
        /// `luhd_quant_gemm_k_avx2_supports` for AVX2: Q3_K-Q6_K, and Q2_K for AVX2 only; their
        /// columns are whole super-blocks), else blocks of 32.
        package init(for w: QuantizedMatrix, kernel: Int8ProductKernel = .host) {
            let fmt = Int32(w.format.ggmlType)
            let perSuperBlock = kernel == .vnni ? luhd_quant_gemm_k_supports(fmt) != 0 : luhd_quant_gemm_k_avx2_supports(fmt) != 0
            self = perSuperBlock && w.columns % 256 == 0 ? .superBlocksOf256 : .blocksOf32
        }
    }

    package let rows: Int
    package let columns: Int
    package let blocking: Blocking
    /// The product the rows are prepared for.
    package let kernel: Int8ProductKernel
    /// Bytes per prepared row (64-byte multiple).
    package let rowBytes: Int
    package let bytes: UnsafeMutableRawPointer

    /// Prepares `rows` rows of `columns` floats (row-major, `ldx` floats apart, contiguous when
    /// nil; `columns` a multiple of 32, of 256 for `.superBlocksOf256`), split over `threads` by
    /// rows (each row is prepared the same way whatever the split and the stride). `kernel`: the
    /// product that reads them (this CPU's by default). On a CPU that does not run `kernel` the
    /// bytes stay unwritten (and no product reads them: `Int8ProductPlan`).
    package init(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int? = nil, columns k: Int, blocking: Blocking = .blocksOf32,
                 kernel: Int8ProductKernel = .host, threads: Int) {
        rows = max(0, m)
        columns = k
        self.kernel = kernel
        self.blocking = blocking
        switch (kernel, blocking) {
        case (.vnni, .blocksOf32): rowBytes = luhd_quant_gemm_x_bytes(k, 1)
        case (.vnni, .superBlocksOf256): rowBytes = luhd_quant_gemm_k_x_bytes(k, 1)
        case (.avx2, .blocksOf32): rowBytes = luhd_quant_gemm_avx2_x_bytes(k, 1)
        case (.avx2, .superBlocksOf256): rowBytes = luhd_quant_gemm_k_avx2_x_bytes(k, 1)
        }
        bytes = .allocate(byteCount: max(64, rowBytes * rows), alignment: 64)
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), xd = SendablePointer(bytes.assumingMemoryBound(to: UInt8.self))
        guard kernel.isAvailable else { return }
        let parts = chunks(rows, parts: threads)
        let stride = rowBytes, ld = ldx ?? k
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p]
            let (src, dst) = (xs.p + r.lowerBound * ld, xd.p + r.lowerBound * stride)
            switch (kernel, blocking) {
            case (.vnni, .blocksOf32): luhd_quant_gemm_prepare_x(src, ld, k, r.count, dst)
            case (.vnni, .superBlocksOf256): luhd_quant_gemm_k_prepare_x(src, ld, k, r.count, dst)
            case (.avx2, .blocksOf32): luhd_quant_gemm_avx2_prepare_x(src, ld, k, r.count, dst)
            case (.avx2, .superBlocksOf256): luhd_quant_gemm_k_avx2_prepare_x(src, ld, k, r.count, dst)
            }
        }
    }

    deinit { bytes.deallocate() }
}
