import LlavaUHD
import Testing

/// Readers of the upstream cases' files (Tests/Fixtures/upstream), shared by the image,
/// vision and projector tests.
package enum UpstreamCaseFiles {
    /// `manifest.json` of an upstream case.
    package static func manifest(_ caseName: String) throws -> JSONValue {
        try Fixtures.json(Fixtures.upstream(caseName) + "/manifest.json")
    }

    /// An `[a, b]` JSON pair.
    package static func pair(_ v: JSONValue?) -> (Int, Int)? {
        guard let a = v?.arrayValue, a.count == 2, let x = a[0].intValue, let y = a[1].intValue else { return nil }
        return (x, y)
    }

    /// The CLIP config of a case, built from `model.clip_inferred_from_shapes` (the values the
    /// fixture generator derived from the tensor shapes).
    package static func clipConfig(_ caseName: String) throws -> CLIPVisionConfig {
        try clipConfig(try #require(manifest(caseName)["model"]?["clip_inferred_from_shapes"]), selectLayer: -2)
    }

    /// A CLIP config from a JSON object with transformers' `CLIPVisionConfig` keys.
    package static func clipConfig(_ c: JSONValue, selectLayer: Int) throws -> CLIPVisionConfig {
        CLIPVisionConfig(hiddenSize: try #require(c["hidden_size"]?.intValue),
                         layerCount: try #require(c["num_hidden_layers"]?.intValue),
                         headCount: try #require(c["num_attention_heads"]?.intValue),
                         intermediateSize: try #require(c["intermediate_size"]?.intValue),
                         patchSize: try #require(c["patch_size"]?.intValue),
                         imageSize: try #require(c["image_size"]?.intValue),
                         layerNormEps: Float(try #require(c["layer_norm_eps"]?.doubleValue)),
                         selectLayer: selectLayer)
    }

    /// An `(…, H, W, 3)` uint8 array as RGB images (one per leading index).
    package static func rgbImages(_ a: NPYArray) throws -> [RGBImage] {
        let s = a.shape
        try #require(s.count >= 3 && s.last == 3)
        let h = s[s.count - 3], w = s[s.count - 2]
        let n = a.count / (h * w * 3)
        let bytes = a.uint8
        return (0..<n).map { i in
            RGBImage(width: w, height: h, pixels: Array(bytes[(i * h * w * 3)..<((i + 1) * h * w * 3)]))
        }
    }

    /// The RGB views of a case as the fixture stores them: slices row-major, then the overview.
    package static func fixtureViews(_ caseName: String) throws -> [RGBImage] {
        var views: [RGBImage] = []
        let dir = Fixtures.upstream(caseName)
        if fileExists(dir + "/rgb_slices.npy") { views += try rgbImages(Fixtures.npy(caseName, "rgb_slices")) }
        views += try rgbImages(Fixtures.npy(caseName, "rgb_overview"))
        return views
    }
}

