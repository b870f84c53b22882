#if canImport(Glibc)
import Glibc
#endif

/// How the Hiwin (and v1) projector samples one feature map of `height × width` pixels: a
/// fixed `grid × grid` set of windows (docs/MODEL.md §4 step 3–4; upstream `slice_image_feature_minicpm`,
/// `generate_subimage_coordinates`, `cal_best_pooling_size`, `adapt_unfold`), each pooled by
/// RoIAlign to `pooledHeight × pooledWidth` samples.
///
/// Window (r, c), index `grid·r + c`, is the box x ∈ [c·cw, c·cw + cw], y ∈ [r·ch, r·ch + ch]
/// with ch = √(H·W/n / (W/H)) and cw = ch·W/H (n = grid², computed in double precision, then
/// stored as float32 as upstream's box tensor is). Samples are ordered window, then row-major
/// within the window.
struct WindowLayout: Sendable {
    let height: Int
    let width: Int
    let grid: Int
    let pooledHeight: Int
    let pooledWidth: Int
    let roi: RoIAlign

    var windowCount: Int { grid * grid }
    var samplesPerWindow: Int { pooledHeight * pooledWidth }
    var sampleCount: Int { windowCount * samplesPerWindow }

    init(height: Int, width: Int, grid: Int) throws(LlavaError) {
        self.height = height
        self.width = width
        self.grid = grid
        (pooledHeight, pooledWidth) = Self.poolingSize(widthOverHeight: Double(width) / Double(height))
        roi = try RoIAlign(height: height, width: width, boxes: try Self.windows(height: height, width: width, grid: grid),
                           pooledHeight: pooledHeight, pooledWidth: pooledWidth)
    }

    /// The `grid²` window boxes of a `height × width` map, row-major.
    static func windows(height: Int, width: Int, grid: Int) throws(LlavaError) -> [RoIAlign.Box] {
        let n = Double(grid * grid)
        let aspect = Double(width) / Double(height)
        let cropHeight = (Double(height) * Double(width) / n / aspect).squareRoot()
        let cropWidth = cropHeight * aspect
        let rows = Int((Double(height) / cropHeight).rounded(.toNearestOrEven))
        let cols = Int((Double(width) / cropWidth).rounded(.toNearestOrEven))
        guard rows == grid, cols == grid else {
            throw LlavaError(.internal, "window grid of a \(height)x\(width) map came out \(rows)x\(cols), expected \(grid)x\(grid)")
        }
        var boxes: [RoIAlign.Box] = []
        boxes.reserveCapacity(grid * grid)
        for r in 0..<grid {
            for c in 0..<grid {
                let x1 = Double(c) * cropWidth, y1 = Double(r) * cropHeight
                boxes.append(RoIAlign.Box(x1: Float(x1), y1: Float(y1), x2: Float(x1 + cropWidth), y2: Float(y1 + cropHeight)))
            }
        }
        return boxes
    }

    /// `cal_best_pooling_size`: the candidate (w, h) whose log aspect ratio is nearest the
    /// map's (first one wins ties), returned as (h, w).
    static func poolingSize(widthOverHeight ratio: Double) -> (height: Int, width: Int) {
        let candidates = [(4, 2), (3, 2), (4, 3), (3, 3), (2, 4), (2, 3), (3, 4)]
        let target = log(ratio)
        var best = (height: 3, width: 3)
        var bestError = Double.infinity
        for (w, h) in candidates {
            let error = abs(target - log(Double(w) / Double(h)))
            if error < bestError {
                best = (h, w)
                bestError = error
            }
        }
        return best
    }
}
