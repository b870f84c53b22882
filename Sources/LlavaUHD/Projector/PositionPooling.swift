/// The position term of the keys for one level size (SPEC §4 step 2; upstream `get_abs_pos`
/// and `prepare_single_key_value`): the stored `grid × grid` table `pos_embed` resized to the
/// level's `height × width` with torch's bicubic (align_corners=False, `size=(h, w)`),
/// optionally rounded to bfloat16, then pooled by the level's windows like the features.
///
/// The rounding is upstream's: Hiwin adds `key_pos_embed.to(dtype=dtype)` where `dtype` is a
/// parameter defaulting to `torch.bfloat16`, whatever the compute precision. (The v1 resampler
/// uses the features' dtype, so float32 keeps the table in float32.)
///
/// The resize is done separably, as torch sums it (along x within each of 4 source rows,
/// then along y): the x pass of every table row once, then, per block of windows, only the
/// output rows that block's samples read.
struct PositionPooling {
    let layout: WindowLayout
    let embedDim: Int
    let grid: Int
    let roundToBFloat16: Bool
    private let rowTaps: (index: [Int], weight: [Float])
    /// `[grid, width, E]`: each table row resized along x.
    private let horizontal: [Float]

    /// `table` is `[grid², E]`, row r·grid + c for table row r, column c.
    init(table: [Float], grid: Int, embedDim: Int, layout: WindowLayout, roundToBFloat16: Bool) {
        self.layout = layout
        self.embedDim = embedDim
        self.grid = grid
        self.roundToBFloat16 = roundToBFloat16
        rowTaps = TorchResample.cubicTaps(input: grid, output: layout.height)
        let columnTaps = TorchResample.cubicTaps(input: grid, output: layout.width)
        let e = embedDim, w = layout.width
        var h = [Float](repeating: 0, count: grid * w * e)
        table.withUnsafeBufferPointer { t in
            h.withUnsafeMutableBufferPointer { out in
                for a in 0..<grid {
                    for x in 0..<w {
                        let idx = columnTaps.index[(x * 4)..<(x * 4 + 4)].map { t.baseAddress! + (a * grid + $0) * e }
                        let wt = Array(columnTaps.weight[(x * 4)..<(x * 4 + 4)])
                        Self.combine4(idx, wt, count: e, into: out.baseAddress! + (a * w + x) * e)
                    }
                }
            }
        }
        horizontal = h
    }

    /// The pooled positions of window samples `cells` (`[cells.count, E]`).
    func pooled(cells: Range<Int>, threads: Int) -> [Float] {
        let e = embedDim, w = layout.width
        let pixels = layout.roi.pixelRange(cells: cells)
        var out = [Float](repeating: 0, count: cells.count * e)
        guard !pixels.isEmpty else { return out }
        let y0 = pixels.lowerBound / w, y1 = (pixels.upperBound - 1) / w + 1
        var rows = [Float](repeating: 0, count: (y1 - y0) * w * e)
        horizontal.withUnsafeBufferPointer { hb in
            rows.withUnsafeMutableBufferPointer { rb in
                for y in y0..<y1 {
                    let wt = Array(rowTaps.weight[(y * 4)..<(y * 4 + 4)])
                    for x in 0..<w {
                        let src = rowTaps.index[(y * 4)..<(y * 4 + 4)].map { hb.baseAddress! + ($0 * w + x) * e }
                        Self.combine4(src, wt, count: e, into: rb.baseAddress! + ((y - y0) * w + x) * e)
                    }
                }
                if roundToBFloat16 {
                    for i in 0..<rb.count { rb[i] = Self.roundedToBFloat16(rb[i]) }
                }
            }
        }
        rows.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o in
                layout.roi.apply(r.baseAddress!, channels: e, into: o.baseAddress!, cells: cells, firstPixel: y0 * w,
                                 threads: threads)
            }
        }
        return out
    }

    /// `out = w0·s0 + w1·s1 + w2·s2 + w3·s3` element-wise, summed left to right.
    static func combine4(_ s: [UnsafePointer<Float>], _ w: [Float], count: Int, into out: UnsafeMutablePointer<Float>) {
        let w0 = SIMD16<Float>(repeating: w[0]), w1 = SIMD16<Float>(repeating: w[1])
        let w2 = SIMD16<Float>(repeating: w[2]), w3 = SIMD16<Float>(repeating: w[3])
        let r0 = UnsafeRawPointer(s[0]), r1 = UnsafeRawPointer(s[1]), r2 = UnsafeRawPointer(s[2]), r3 = UnsafeRawPointer(s[3])
        let d = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 16 <= count {
            let o = i * 4
            var v = w0 * r0.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            v += w1 * r1.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            v += w2 * r2.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            v += w3 * r3.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            d.storeBytes(of: v, toByteOffset: o, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            out[i] = w[0] * s[0][i] + w[1] * s[1][i] + w[2] * s[2][i] + w[3] * s[3][i]
            i += 1
        }
    }

    /// Round to nearest even bfloat16, as `tensor.to(torch.bfloat16)` (NaN stays NaN).
    @inline(__always)
    static func roundedToBFloat16(_ x: Float) -> Float {
        guard !x.isNaN else { return x }
        let b = x.bitPattern
        return Float(bitPattern: (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000)
    }
}
