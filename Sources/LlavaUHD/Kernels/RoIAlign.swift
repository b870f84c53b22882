import CLlavaUHD

/// torchvision's `roi_align` (the CPU kernel's arithmetic), precomputed for one map size and
/// one set of boxes and then applied to any number of channels, vectorised over the channels
/// of a `[height, width, channels]` map.
///
/// For box `(x1, y1, x2, y2)` (in map pixels after `spatialScale`, minus 0.5 when `aligned`)
/// and output cell `(ph, pw)`: the box is split into `pooledHeight × pooledWidth` bins; each
/// bin is sampled on a `gridH × gridW` grid (`samplingRatio`, or `ceil(binSize)` when it is
/// ≤ 0) at `start + bin·binSize + (i + 0.5)·binSize/grid`; each sample is a bilinear tap of the
/// 4 surrounding pixels (coordinates below 0 clamp to 0, a sample at or past the last
/// row/column uses that row/column, a sample outside `[-1, size]` contributes 0); the cell is
/// the sum of its samples divided by `gridH·gridW` (each sample's 4 taps summed first, as
/// torchvision does; in C: `luhd_proj_roi_cells`). Without `aligned`, boxes narrower than one
/// pixel count as one pixel wide. Output order: box, then `ph`, then `pw`, then channel.
package struct RoIAlign: Sendable {
    /// A box in map coordinates (before `spatialScale`).
    package struct Box: Sendable, Equatable {
        package var x1: Float, y1: Float, x2: Float, y2: Float
        package init(x1: Float, y1: Float, x2: Float, y2: Float) {
            self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2
        }
    }

    package let height: Int
    package let width: Int
    package let pooledHeight: Int
    package let pooledWidth: Int
    package let boxCount: Int

    /// Output cell `c` owns samples `sampleStart[c] ..< sampleStart[c + 1]`.
    let sampleStart: [Int32]
    /// 4 pixel indices (`y·width + x`) and 4 bilinear weights per sample, in torchvision's
    /// order (low/low, low/high, high/low, high/high).
    let samplePixels: [Int32]
    let sampleWeights: [Float]
    /// Each cell's sample count `max(gridH·gridW, 1)`; its sum is divided by it, as torchvision does.
    let cellDivisor: [Float]

    /// Output cells: `boxCount · pooledHeight · pooledWidth`.
    package var cellCount: Int { boxCount * pooledHeight * pooledWidth }

    /// Precomputes the samples. Throws `.invalidArgument` for an empty map or pooled size,
    /// or a non-finite box.
    package init(height: Int, width: Int, boxes: [Box], pooledHeight: Int, pooledWidth: Int,
                spatialScale: Float = 1, samplingRatio: Int = -1, aligned: Bool = false) throws(LlavaError) {
        guard height > 0, width > 0 else {
            throw LlavaError(.invalidArgument, "roi_align: empty \(height)x\(width) map")
        }
        guard pooledHeight > 0, pooledWidth > 0 else {
            throw LlavaError(.invalidArgument, "roi_align: pooled size \(pooledHeight)x\(pooledWidth) must be positive")
        }
        self.height = height
        self.width = width
        self.pooledHeight = pooledHeight
        self.pooledWidth = pooledWidth
        self.boxCount = boxes.count

        var starts: [Int32] = [0]
        var pixels: [Int32] = []
        var weights: [Float] = []
        var divisors: [Float] = []
        starts.reserveCapacity(boxes.count * pooledHeight * pooledWidth + 1)
        let offset: Float = aligned ? 0.5 : 0
        for box in boxes {
            guard box.x1.isFinite, box.y1.isFinite, box.x2.isFinite, box.y2.isFinite else {
                throw LlavaError(.invalidArgument, "roi_align: box \(box) is not finite")
            }
            let startW = box.x1 * spatialScale - offset
            let startH = box.y1 * spatialScale - offset
            var roiW = box.x2 * spatialScale - offset - startW
            var roiH = box.y2 * spatialScale - offset - startH
            if !aligned {
                roiW = max(roiW, 1)
                roiH = max(roiH, 1)
            }
            let binH = roiH / Float(pooledHeight)
            let binW = roiW / Float(pooledWidth)
            let gridH = samplingRatio > 0 ? samplingRatio : Int((roiH / Float(pooledHeight)).rounded(.up))
            let gridW = samplingRatio > 0 ? samplingRatio : Int((roiW / Float(pooledWidth)).rounded(.up))
            let count = Float(max(gridH * gridW, 1))
            for ph in 0..<pooledHeight {
                for pw in 0..<pooledWidth {
                    for iy in 0..<max(gridH, 0) {
                        let yy = startH + Float(ph) * binH + (Float(iy) + 0.5) * binH / Float(gridH)
                        for ix in 0..<max(gridW, 0) {
                            let xx = startW + Float(pw) * binW + (Float(ix) + 0.5) * binW / Float(gridW)
                            guard let tap = Self.bilinear(y: yy, x: xx, height: height, width: width) else { continue }
                            pixels.append(contentsOf: tap.pixels)
                            weights.append(contentsOf: tap.weights)
                        }
                    }
                    starts.append(Int32(pixels.count / 4))
                    divisors.append(count)
                }
            }
        }
        sampleStart = starts
        samplePixels = pixels
        sampleWeights = weights
        cellDivisor = divisors
    }

    /// The 4 taps of one sample point, or nil when it lies outside `[-1, size]` (torchvision
    /// then gives it zero weight).
    static func bilinear(y yIn: Float, x xIn: Float, height: Int, width: Int) -> (pixels: [Int32], weights: [Float])? {
        guard yIn >= -1, yIn <= Float(height), xIn >= -1, xIn <= Float(width) else { return nil }
        var y = max(yIn, 0), x = max(xIn, 0)
        var yLow = Int(y), xLow = Int(x)
        let yHigh: Int, xHigh: Int
        if yLow >= height - 1 {
            yLow = height - 1; yHigh = yLow; y = Float(yLow)
        } else {
            yHigh = yLow + 1
        }
        if xLow >= width - 1 {
            xLow = width - 1; xHigh = xLow; x = Float(xLow)
        } else {
            xHigh = xLow + 1
        }
        let ly = y - Float(yLow), lx = x - Float(xLow)
        let hy = 1 - ly, hx = 1 - lx
        return ([Int32(yLow * width + xLow), Int32(yLow * width + xHigh),
                 Int32(yHigh * width + xLow), Int32(yHigh * width + xHigh)],
                [hy * hx, hy * lx, ly * hx, ly * lx])
    }

    /// Pools a `[height, width, channels]` map into `out`: cell `c` of `cells` (default all)
    /// goes to `out + (c − cells.lowerBound)·outStride` (`outStride` ≥ channels, default
    /// channels). When `pixelScale` (one factor per map pixel, indexed like `map`) is given, each
    /// pixel counts as its factor times its value. `map` may hold only the pixels from `firstPixel` on (then it
    /// points at pixel `firstPixel`; see `pixelRange`). Cells are split across `threads`; each
    /// is computed in a fixed order.
    package func apply(_ map: UnsafePointer<Float>, channels: Int, into out: UnsafeMutablePointer<Float>,
                      cells: Range<Int>? = nil, firstPixel: Int = 0, outStride: Int? = nil,
                      pixelScale: UnsafePointer<Float>? = nil, threads: Int = 1) {
        let stride = outStride ?? channels
        let range = cells ?? 0..<cellCount
        guard !range.isEmpty, channels > 0 else { return }
        precondition(range.lowerBound >= 0 && range.upperBound <= cellCount, "roi_align: cells \(range) out of range")
        let o = SendablePointer(out)
        let m = SendablePointer(UnsafeMutablePointer(mutating: map))
        let scale = pixelScale.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let parts = chunks(range.count, parts: range.count * channels < (1 << 14) ? 1 : threads * 4)
        sampleStart.withUnsafeBufferPointer { startBuf in
            samplePixels.withUnsafeBufferPointer { pixBuf in
                sampleWeights.withUnsafeBufferPointer { wBuf in
                    cellDivisor.withUnsafeBufferPointer { divBuf in
                        let starts = SendablePointer(UnsafeMutablePointer(mutating: startBuf.baseAddress!))
                        let pix = SendablePointer(UnsafeMutablePointer(mutating: pixBuf.baseAddress!))
                        let wts = SendablePointer(UnsafeMutablePointer(mutating: wBuf.baseAddress!))
                        let divs = SendablePointer(UnsafeMutablePointer(mutating: divBuf.baseAddress!))
                        parallelFor(parts.count, threads: threads) { part in
                            let cells = parts[part]
                            luhd_proj_roi_cells(m.p, channels, firstPixel, starts.p, pix.p, wts.p, divs.p, scale?.p,
                                                range.lowerBound + cells.lowerBound, range.lowerBound + cells.upperBound,
                                                o.p + cells.lowerBound * stride, stride)
                        }
                    }
                }
            }
        }
    }

    /// The pixels (`y·width + x`) that the taps of `cells` read, as a range from the first to
    /// the last.
    package func pixelRange(cells: Range<Int>) -> Range<Int> {
        var low = Int.max, high = Int.min
        for s in Int(sampleStart[cells.lowerBound])..<Int(sampleStart[cells.upperBound]) {
            for k in 0..<4 {
                let p = Int(samplePixels[4 * s + k])
                low = min(low, p)
                high = max(high, p)
            }
        }
        return low <= high ? low..<(high + 1) : 0..<0
    }
}
