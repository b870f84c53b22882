import CLlavaUHD

/// Rows of x prepared for the int8 VNNI matrix products of prefill (`MatMul.int8Product`,
/// Sources/CLlavaUHD/quant_gemm_vnni.c): each row quantized to int8 per block of 32 (dx =
/// max|x|/127, round to nearest even, stored as x + 128) with the block scales and sums, by
/// `luhd_quant_gemm_prepare_x`. The image depends on x alone, not on the weights' format, so the
/// products that read the same x (q/k/v, gate/up) share one (`MatMul.linear(_:rows:weights:...)`).
///
/// Memory: `luhd_quant_gemm_x_bytes(columns, 1)` (1.5 bytes per element, rounded up to 64) per
/// row, owned by this object and freed with it.
package final class PreparedInt8Rows {
    package let rows: Int
    package let columns: Int
    /// Bytes per prepared row (64-byte multiple).
    package let rowBytes: Int
    package let bytes: UnsafeMutableRawPointer

    /// Prepares `rows` rows of `columns` floats (row-major, `ldx` floats apart, contiguous when
    /// nil; `columns` a multiple of 32), split over `threads` by rows (each row is prepared the
    /// same way whatever the split and the stride).
    package init(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int? = nil, columns k: Int, threads: Int) {
        rows = max(0, m)
        columns = k
        rowBytes = luhd_quant_gemm_x_bytes(k, 1)
        bytes = .allocate(byteCount: max(64, rowBytes * rows), alignment: 64)
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), xd = SendablePointer(bytes.assumingMemoryBound(to: UInt8.self))
        let parts = chunks(rows, parts: threads)
        let stride = rowBytes, ld = ldx ?? k
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p]
            luhd_quant_gemm_prepare_x(xs.p + r.lowerBound * ld, ld, k, r.count, xd.p + r.lowerBound * stride)
        }
    }

    deinit { bytes.deallocate() }
}
