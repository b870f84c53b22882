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
/// pixels that block's samples read, resized, rounded and pooled a few channels at a time.
struct PositionPooling {
    let layout: WindowLayout
    let embedDim: Int
    let grid: Int
    let roundToBFloat16: Bool
    /// The 4 table rows (`Int32`) and weights of each output row's bicubic taps along y.
    private let rowIndex: [Int32]
    private let rowWeight: [Float]
    /// `[grid, width, E]`: each table row resized along x.
    private let horizontal: [Float]

    /// `table` is `[grid², E]`, row r·grid + c for table row r, column c.
    init(table: [Float], grid: Int, embedDim: Int, layout: WindowLayout, roundToBFloat16: Bool) {
        self.layout = layout
        self.embedDim = embedDim
        self.grid = grid
        self.roundToBFloat16 = roundToBFloat16
        let rowTaps = TorchResample.cubicTaps(input: grid, output: layout.height)
        rowIndex = rowTaps.index.map { Int32($0) }
        rowWeight = rowTaps.weight
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

    /// The pooled positions of window samples `cells` (`[cells.count, E]`). Only the pixels the
    /// cells' samples read are resized, `LUHD_PROJ_POSITION_LANES` channels at a time so that they
    /// stay in cache until pooled (`luhd_proj_position_pool`); channels are split across threads
    /// (each value is computed alone, so the split does not change it).
    func pooled(cells: Range<Int>, threads: Int) -> [Float] {
        let e = embedDim, w = layout.width
        let pixels = layout.roi.pixelRange(cells: cells)
        var out = [Float](repeating: 0, count: cells.count * e)
        guard !pixels.isEmpty else { return out }
        let round = roundToBFloat16 ? VectorKernels.table.round_bf16 : nil
        let roi = layout.roi
        let lanes = Int(LUHD_PROJ_POSITION_LANES)
        let parts = chunks((e + lanes - 1) / lanes, parts: threads).map { ($0.lowerBound * lanes)..<min($0.upperBound * lanes, e) }
        horizontal.withUnsafeBufferPointer { hb in
            rowIndex.withUnsafeBufferPointer { ib in
                rowWeight.withUnsafeBufferPointer { wb in
                    roi.sampleStart.withUnsafeBufferPointer { sb in
                        roi.samplePixels.withUnsafeBufferPointer { pb in
                            roi.sampleWeights.withUnsafeBufferPointer { swb in
                                roi.cellDivisor.withUnsafeBufferPointer { db in
                                    out.withUnsafeMutableBufferPointer { ob in
                                        let h = SendablePointer(UnsafeMutablePointer(mutating: hb.baseAddress!))
                                        let ri = SendablePointer(UnsafeMutablePointer(mutating: ib.baseAddress!))
                                        let rw = SendablePointer(UnsafeMutablePointer(mutating: wb.baseAddress!))
                                        let st = SendablePointer(UnsafeMutablePointer(mutating: sb.baseAddress!))
                                        let px = SendablePointer(UnsafeMutablePointer(mutating: pb.baseAddress!))
                                        let sw = SendablePointer(UnsafeMutablePointer(mutating: swb.baseAddress!))
                                        let dv = SendablePointer(UnsafeMutablePointer(mutating: db.baseAddress!))
                                        let o = SendablePointer(ob.baseAddress!)
                                        parallelFor(parts.count, threads: threads) { part in
                                            let channels = parts[part]
                                            guard !channels.isEmpty else { return }
                                            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: pixels.count * lanes)
                                            defer { scratch.deallocate() }
                                            luhd_proj_position_pool(h.p, w, e, ri.p, rw.p, round, st.p, px.p, sw.p, dv.p,
                                                                    pixels.lowerBound, pixels.count, cells.lowerBound,
                                                                    cells.upperBound, channels.lowerBound, channels.upperBound,
                                                                    scratch, o.p, e)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
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
