/// Resampling exactly as PyTorch computes it on float32 tensors, for the places where upstream
/// calls `F.interpolate(..., mode='bicubic', align_corners=False)` (CLIP and Hiwin position
/// tables, the VDIM 2× upsample) and `F.adaptive_avg_pool2d` (VDIM guidance).
/// (Pillow's 8-bit resize, used on images, is a different algorithm: see Image/.)
package enum TorchResample {
    /// Memory order of a 3-D feature tensor.
    package enum Layout: Sendable {
        /// `[channels, height, width]` (PyTorch's NCHW without the batch).
        case chw
        /// `[height, width, channels]` (a position table reshaped to a grid).
        case hwc
    }

    /// The 4 source indices (clamped to the border) and weights of each output index, for
    /// torch's bicubic with A = −0.75 and align_corners=False: source = (dst + 0.5)·in/out − 0.5.
    /// `scale` overrides in/out when upstream passes `scale_factor` (then in/out = 1/scale).
    static func cubicTaps(input: Int, output: Int, scale: Float? = nil) -> (index: [Int], weight: [Float]) {
        let a: Float = -0.75
        let ratio: Float = scale.map { 1 / $0 } ?? Float(input) / Float(output)
        var index = [Int](repeating: 0, count: output * 4)
        var weight = [Float](repeating: 0, count: output * 4)
        for o in 0..<output {
            let real = ratio * (Float(o) + 0.5) - 0.5
            let f = real.rounded(.down)
            let t = real - f
            let i0 = Int(f)
            let x1 = t, x2 = 1 - t
            weight[o * 4 + 0] = ((a * (x1 + 1) - 5 * a) * (x1 + 1) + 8 * a) * (x1 + 1) - 4 * a
            weight[o * 4 + 1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1
            weight[o * 4 + 2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1
            weight[o * 4 + 3] = ((a * (x2 + 1) - 5 * a) * (x2 + 1) + 8 * a) * (x2 + 1) - 4 * a
            for k in 0..<4 { index[o * 4 + k] = min(max(i0 - 1 + k, 0), input - 1) }
        }
        return (index, weight)
    }

    /// Bicubic resize of a `channels × height × width` tensor to `outHeight × outWidth`, in the
    /// same layout. Each output is Σ_y w_y · (Σ_x w_x · in[y][x]), in torch's order, without fused
    /// multiply-adds. It runs separably (the inner sums of each source row are computed once and
    /// reused by every output row that needs them, which gives the same values), vectorised over
    /// the contiguous dimension (output columns for CHW, channels for HWC) and split across
    /// `threads` (by channels for CHW, by rows for HWC); the result is bit-identical whatever the
    /// threads or instruction set.
    package static func bicubic(_ src: UnsafePointer<Float>, layout: Layout, channels: Int, height: Int, width: Int,
                               outHeight: Int, outWidth: Int, into out: UnsafeMutablePointer<Float>,
                               scaleHeight: Float? = nil, scaleWidth: Float? = nil, threads: Int = 1) {
        guard channels > 0, height > 0, width > 0, outHeight > 0, outWidth > 0 else { return }
        let ty = cubicTaps(input: height, output: outHeight, scale: scaleHeight)
        let tx = cubicTaps(input: width, output: outWidth, scale: scaleWidth)
        let iy = ty.index.map { Int32($0) }, ix = tx.index.map { Int32($0) }
        let kernels = VectorKernels.table
        let o = SendablePointer(out)
        iy.withUnsafeBufferPointer { iyb in
            ix.withUnsafeBufferPointer { ixb in
                ty.weight.withUnsafeBufferPointer { wyb in
                    tx.weight.withUnsafeBufferPointer { wxb in
                        let iy = iyb.baseAddress!, ix = ixb.baseAddress!, wy = wyb.baseAddress!, wx = wxb.baseAddress!
                        switch layout {
                        case .chw:
                            // Per channel: the height × outWidth row sums, then the output plane.
                            let work = height * outWidth + outHeight * outWidth
                            let parts = chunks(channels, parts: work * channels < (1 << 15) ? 1 : threads * 4)
                            parallelFor(parts.count, threads: threads) { p in
                                let rows = UnsafeMutablePointer<Float>.allocate(capacity: height * outWidth)
                                defer { rows.deallocate() }
                                for c in parts[p] {
                                    kernels.bicubic_horizontal(src + c * height * width, 0, height, width, 1, outWidth,
                                                               ix, wx, rows)
                                    kernels.bicubic_vertical(rows, outWidth, 1, 0, outHeight, iy, wy,
                                                             o.p + c * outHeight * outWidth)
                                }
                            }
                        case .hwc:
                            // All source rows' sums [height, outWidth, channels], then the output rows.
                            let rows = HugePages.allocateFloats(count: height * outWidth * channels)
                            defer { rows.deallocate() }
                            let r = SendablePointer(rows)
                            let small = outHeight * outWidth * channels < (1 << 15)
                            let inParts = chunks(height, parts: small ? 1 : threads * 2)
                            parallelFor(inParts.count, threads: threads) { p in
                                kernels.bicubic_horizontal(src, inParts[p].lowerBound, inParts[p].upperBound, width,
                                                           channels, outWidth, ix, wx, r.p)
                            }
                            let outParts = chunks(outHeight, parts: small ? 1 : threads * 4)
                            parallelFor(outParts.count, threads: threads) { p in
                                kernels.bicubic_vertical(r.p, outWidth, channels, outParts[p].lowerBound,
                                                         outParts[p].upperBound, iy, wy, o.p)
                            }
                        }
                    }
                }
            }
        }
    }

    /// `F.adaptive_avg_pool2d` of a `[channels, height, width]` tensor: output cell (i, j)
    /// averages rows ⌊i·H/oh⌋ ..< ⌈(i+1)·H/oh⌉ and columns likewise.
    package static func adaptiveAvgPool(_ src: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                                       outHeight: Int, outWidth: Int, into out: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            for i in 0..<outHeight {
                let y0 = i * height / outHeight, y1 = ((i + 1) * height + outHeight - 1) / outHeight
                for j in 0..<outWidth {
                    let x0 = j * width / outWidth, x1 = ((j + 1) * width + outWidth - 1) / outWidth
                    var sum: Float = 0
                    for y in y0..<y1 { for x in x0..<x1 { sum += src[(c * height + y) * width + x] } }
                    out[(c * outHeight + i) * outWidth + j] = sum / Float((y1 - y0) * (x1 - x0))
                }
            }
        }
    }
}
