import CLlavaUHD

/// The position term of the keys for one level size (docs/MODEL.md §4 step 2; upstream `get_abs_pos`
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
        // Output rows are split across threads (each value is computed alone, so the split does
        // not change it); each part rounds its own rows.
        let taps = rowTaps, round = roundToBFloat16
        horizontal.withUnsafeBufferPointer { hb in
            rows.withUnsafeMutableBufferPointer { rb in
                let h = SendablePointer(UnsafeMutablePointer(mutating: hb.baseAddress!)), r = SendablePointer(rb.baseAddress!)
                let parts = chunks(y1 - y0, parts: threads)
                parallelFor(parts.count, threads: threads) { part in
                    let first = r.p + parts[part].lowerBound * w * e
                    for y in (y0 + parts[part].lowerBound)..<(y0 + parts[part].upperBound) {
                        let wt = Array(taps.weight[(y * 4)..<(y * 4 + 4)])
                        for x in 0..<w {
                            let src = taps.index[(y * 4)..<(y * 4 + 4)].map { UnsafePointer(h.p + ($0 * w + x) * e) }
                            Self.combine4(src, wt, count: e, into: r.p + ((y - y0) * w + x) * e)
                        }
                    }
                    if round {
                        FloatConversion.roundToBFloat16(first, count: parts[part].count * w * e, threads: 1)
                    }
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

    /// `out = ((w0·s0 + w1·s1) + w2·s2) + w3·s3` element-wise (torch's order, no fused
    /// multiply-add).
    static func combine4(_ s: [UnsafePointer<Float>], _ w: [Float], count: Int, into out: UnsafeMutablePointer<Float>) {
        luhd_proj_combine4(s[0], s[1], s[2], s[3], w, count, out)
    }

    /// `x` after `tensor.to(torch.bfloat16)` (round to nearest even).
    static func roundedToBFloat16(_ x: [Float]) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { FloatConversion.roundToBFloat16($0.baseAddress!, count: $0.count) }
        return y
    }
}
