import CLlavaUHD

/// Int8 matrix products against dense weights (`MatrixArithmetic.int8`): the weights get a Q8_0
/// copy made once (at model load), and the products run through the quantized-prefill path
/// `MatMul.linear(_:rows:weight:into:ldOut:context:kernel:rowwise:)`: x quantized to int8 per
/// block of 32 and multiplied with AVX-512 VNNI `vpdpbusd` (Sources/CLlavaUHD/quant_gemm_vnni.c)
/// or, without it, AVX2 `vpmaddubsw` + `vpmaddwd` (quant_gemm_avx2.c; `Int8ProductKernel`), or,
/// with an f32 kernel (a CPU without AVX2, or a test forcing the fallback), the Q8_0 copy
/// dequantized tile by tile for sgemm.
///
/// Memory: the copy takes 34 bytes per 32 weights (1.0625 bytes per weight) on top of the
/// mapped weights: about 310 MB for the 23 layers a ViT-L/14-336 runs (290 M weights).
package enum Int8Product {
    /// True when this CPU runs an int8 matrix product for Q8_0 (AVX-512 F/BW/VL/DQ and VNNI, or
    /// AVX2, FMA and F16C).
    package static let isAvailable = Int8ProductKernel.preferred(for: .q8_0, features: Int8ProductKernel.hostFeatures) != nil

    /// A Q8_0 copy of `weights` stacked along their rows (`[Σ rowsᵢ, K]`, e.g. q|k|v), quantized
    /// with GGML's reference quantizer (d = max|w|/127 per block of 32, stored as f16; q =
    /// round(w/d)), split over `threads` by rows. Nil when the weights are not 2-D float matrices
    /// (F32, F16, BF16) of one row length K that is a multiple of 32, or when the memory for the
    /// copy cannot be had: the caller then keeps its float32 products.
    package static func quantize(_ weights: [TensorView], threads: Int) -> QuantizedMatrix? {
        guard let k = weights.first?.shape.last, k > 0, k % 32 == 0,
              weights.allSatisfy({ $0.shape.count == 2 && $0.shape[1] == k && DType.floatWeights.contains($0.dtype) }),
              let rowBytes = QuantFormat.q8_0.rowBytes(columns: k) else { return nil }
        let rows = weights.reduce(0) { $0 + $1.shape[0] }
        let (bytes, overflow) = rows.multipliedReportingOverflow(by: rowBytes)
        guard rows > 0, !overflow, let storage = StreamedBuffer(byteCount: bytes) else { return nil }
        let out = SendablePointer(storage.bytes.assumingMemoryBound(to: UInt8.self))
        var firstRow = 0
        for w in weights {
            let n = w.shape[0], base = firstRow
            let parts = chunks(n, parts: max(1, threads) * 4)
            parallelFor(parts.count, threads: threads) { p in
                let r = parts[p]
                MatMul.withScratch(floats: r.count * k) { scratch in
                    FloatConversion.widen(w, from: r.lowerBound * k, count: r.count * k, into: scratch)
                    luhd_quant_quantize_q8_0(scratch, r.count * k, out.p + (base + r.lowerBound) * rowBytes)
                }
            }
            firstRow += n
        }
        let name = weights.map(\.name).joined(separator: "|")
        return try? QuantizedMatrix(name: name, format: .q8_0, rows: rows, columns: k,
                                    data: UnsafeRawPointer(storage.bytes), owner: storage)
    }
}
