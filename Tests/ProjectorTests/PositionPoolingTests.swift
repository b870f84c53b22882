@testable import LlavaUHD
import Testing
import TestSupport

/// `PositionPooling.pooled` (resize, bfloat16 rounding and RoIAlign pooling done
/// `LUHD_PROJ_POSITION_LANES` channels at a time, only the pixels the cells read) against the
/// same steps done whole: every output row of the bicubic resize E wide (`combine4` along y of
/// the x-resized table rows, torch's order), rounded, then `RoIAlign.apply` over the block's
/// cells. The values must be identical (each is computed by the same operations). E = 300 leaves
/// a partial pass; two layouts (wide and tall) and a block of windows in the middle, on 1 and 2
/// threads.
@Suite struct PositionPoolingTests {
    @Test(arguments: [(22, 25), (50, 44)])
    func matchesWholeRowPooling(_ size: (Int, Int)) throws {
        let (height, width) = size
        let grid = 12, e = 300
        var random = TestRandom(seed: UInt64(height * 100 + width))
        let table = random.floats(grid * grid * e, -1, 1)
        let layout = try WindowLayout(height: height, width: width, grid: grid)
        let pooling = PositionPooling(table: table, grid: grid, embedDim: e, layout: layout, roundToBFloat16: true)
        let n = layout.samplesPerWindow
        let cells = (30 * n)..<(62 * n)

        // Reference: the x pass of every table row, every output row E wide, rounded, pooled.
        let rowTaps = TorchResample.cubicTaps(input: grid, output: height)
        let columnTaps = TorchResample.cubicTaps(input: grid, output: width)
        var horizontal = [Float](repeating: 0, count: grid * width * e)
        var resized = [Float](repeating: 0, count: height * width * e)
        table.withUnsafeBufferPointer { t in
            horizontal.withUnsafeMutableBufferPointer { h in
                for a in 0..<grid {
                    for x in 0..<width {
                        let src = (0..<4).map { t.baseAddress! + (a * grid + columnTaps.index[4 * x + $0]) * e }
                        PositionPooling.combine4(src, Array(columnTaps.weight[(4 * x)..<(4 * x + 4)]), count: e,
                                                 into: h.baseAddress! + (a * width + x) * e)
                    }
                }
            }
        }
        horizontal.withUnsafeBufferPointer { h in
            resized.withUnsafeMutableBufferPointer { r in
                for y in 0..<height {
                    for x in 0..<width {
                        let src = (0..<4).map { UnsafePointer(h.baseAddress! + (rowTaps.index[4 * y + $0] * width + x) * e) }
                        PositionPooling.combine4(src, Array(rowTaps.weight[(4 * y)..<(4 * y + 4)]), count: e,
                                                 into: r.baseAddress! + (y * width + x) * e)
                    }
                }
                FloatConversion.roundToBFloat16(r.baseAddress!, count: r.count)
            }
        }
        var expected = [Float](repeating: 0, count: cells.count * e)
        resized.withUnsafeBufferPointer { r in
            expected.withUnsafeMutableBufferPointer { o in
                layout.roi.apply(r.baseAddress!, channels: e, into: o.baseAddress!, cells: cells)
            }
        }
        for threads in [1, 2] {
            let pooled = pooling.pooled(cells: cells, threads: threads)
            #expect(pooled == expected, "\(height)x\(width), \(threads) thread(s)")
        }
    }
}
