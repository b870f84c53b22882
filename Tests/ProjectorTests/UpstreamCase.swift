import LlavaUHD
import TestSupport

/// One upstream fixture case as the projector tests use it: the tiny model's weights and
/// config, and every view's projector input rebuilt from the fixture (CLIP features from
/// `vit_overview.npy` in float32 and `vit_slices_f16.npy` in float16; pixels normalised from
/// the uint8 `rgb_*.npy` with the manifest's mean/std).
struct UpstreamCase {
    let name: String
    let manifest: JSONValue
    let config: ProjectorConfig
    let weights: WeightStore
    /// Slices (row-major), then the overview.
    let views: [ProjectorInput]
    var sliceCount: Int { views.count - 1 }

    init(_ name: String) throws {
        self.name = name
        manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let model = Fixtures.model(name)
        config = try ModelConfig(directory: model).projector
        weights = try WeightStore(directory: model)

        let pre = manifest["preprocess"]
        let mean = (pre?["image_mean"]?.arrayValue ?? []).compactMap { $0.doubleValue }
        let std = (pre?["image_std"]?.arrayValue ?? []).compactMap { $0.doubleValue }
        guard mean.count == 3, std.count == 3 else { throw LlavaError(.badConfig, "\(name): manifest has no mean/std") }
        let grids = (pre?["view_patch_grids_hw"]?.arrayValue ?? []).map { g in (g.arrayValue ?? []).compactMap { $0.intValue } }
        let c = config.visionHiddenSize

        /// `(rgb/255 − mean)/std`, HWC uint8 → CHW float32.
        func normalise(_ rgb: ArraySlice<UInt8>, height: Int, width: Int) -> [Float] {
            var out = [Float](repeating: 0, count: 3 * height * width)
            let base = rgb.startIndex
            for y in 0..<height {
                for x in 0..<width {
                    for ch in 0..<3 {
                        let v = Double(rgb[base + (y * width + x) * 3 + ch]) / 255
                        out[(ch * height + y) * width + x] = Float((v - mean[ch]) / std[ch])
                    }
                }
            }
            return out
        }

        var views: [ProjectorInput] = []
        if grids.count > 1 {
            let features = try Fixtures.npy(name, "vit_slices_f16")
            let rgb = try Fixtures.npy(name, "rgb_slices")
            let f = features.floats, pixels = rgb.uint8
            let (n, h, w) = (features.shape[0], features.shape[1], features.shape[2])
            let (ph, pw) = (rgb.shape[1], rgb.shape[2])
            for i in 0..<n {
                guard grids[i] == [h, w] else { throw LlavaError(.badConfig, "\(name): slice grid mismatch") }
                views.append(try ProjectorInput(
                    rows: h, columns: w, channels: c, features: Array(f[(i * h * w * c)..<((i + 1) * h * w * c)]),
                    pixelHeight: ph, pixelWidth: pw,
                    pixels: normalise(pixels[(i * ph * pw * 3)..<((i + 1) * ph * pw * 3)], height: ph, width: pw)))
            }
        }
        let overview = try Fixtures.npy(name, "vit_overview")
        let rgb = try Fixtures.npy(name, "rgb_overview")
        let (h, w) = (overview.shape[0], overview.shape[1])
        guard grids.last == [h, w] else { throw LlavaError(.badConfig, "\(name): overview grid mismatch") }
        views.append(try ProjectorInput(rows: h, columns: w, channels: c, features: overview.floats,
                                        pixelHeight: rgb.shape[0], pixelWidth: rgb.shape[1],
                                        pixels: normalise(rgb.uint8[...], height: rgb.shape[0], width: rgb.shape[1])))
        self.views = views
    }

    /// The fixture array `name` as floats.
    func array(_ file: String) throws -> NPYArray { try Fixtures.npy(name, file) }
}
