import LlavaUHD
import TestSupport
import Testing

/// `CLIPVisionEncoder` against transformers' `CLIPVisionModel` (Tests/Fixtures/hf/clip-336 and
/// clip-interp, made by scripts/fixtures/make_hf_fixtures.py: tiny random F32 weights under
/// `vision_model.`, 3 layers, 2 heads of 64, real 336/14 geometry). clip-interp runs a 350×308
/// view, so the position table is resized (bicubic, align_corners=False).
@Suite struct CLIPVisionHFTests {
    static let weights = Fixtures.root + "/hf/clip-336"

    static func config(selectLayer: Int) throws -> CLIPVisionConfig {
        let meta = try Fixtures.json(weights + "/meta.json")
        return try UpstreamCaseFiles.clipConfig(try #require(meta["model"]?["config"]), selectLayer: selectLayer)
    }

    /// The fixture's input: `(u8 − 128) / 64` in CHW float32.
    static func pixels(_ dir: String) throws -> PixelTensor {
        let u8 = try NPYArray(path: dir + "/pixels_u8.npy")
        try #require(u8.shape.count == 4 && u8.shape[0] == 1 && u8.shape[1] == 3)
        return try PixelTensor(width: u8.shape[3], height: u8.shape[2], values: u8.uint8.map { (Float($0) - 128) / 64 })
    }

    @Test(arguments: ["clip-336", "clip-interp"])
    func layerMinus2(_ name: String) throws {
        let dir = Fixtures.root + "/hf/" + name
        let store = try WeightStore(directory: Self.weights)
        let encoder = try CLIPVisionEncoder(store: store, prefix: "vision_model.", config: Self.config(selectLayer: -2))
        #expect(encoder.layersUsed == 2)
        let out = try encoder.encode([Self.pixels(dir)], context: ComputeContext(threads: 2))
        let ref = try NPYArray(path: dir + "/hidden_m2_patches.npy")
        #expect(ref.shape == [out[0].patchCount, out[0].channels])
        let e = relativeMaxError(out[0].values, ref.floats)
        print("hf \(name): hidden_states[-2] rel err \(e)")
        #expect(e <= 1e-4)
    }

    /// Every hidden state (selectLayer 0…3, counted like `hidden_states[i]`) at the fixture's
    /// debug rows (CLS excluded: the encoder drops it).
    @Test(arguments: ["clip-336", "clip-interp"])
    func everyHiddenState(_ name: String) throws {
        let dir = Fixtures.root + "/hf/" + name
        let store = try WeightStore(directory: Self.weights)
        let rows = try NPYArray(path: dir + "/debug_rows.npy").ints
        let states = try NPYArray(path: dir + "/hidden_states_rows.npy")
        let c = states.shape[2], perState = rows.count * c
        let all = states.floats
        let pixels = try Self.pixels(dir)
        for layer in 0..<states.shape[0] {
            let encoder = try CLIPVisionEncoder(store: store, prefix: "vision_model.", config: Self.config(selectLayer: layer))
            #expect(encoder.layersUsed == layer)
            let out = try encoder.encode([pixels], context: ComputeContext(threads: 1))[0]
            var mine: [Float] = [], ref: [Float] = []
            for (k, r) in rows.enumerated() where r > 0 {
                mine += out.values[((r - 1) * c)..<(r * c)]
                ref += all[(layer * perState + k * c)..<(layer * perState + (k + 1) * c)]
            }
            let e = relativeMaxError(mine, ref)
            print("hf \(name): hidden_states[\(layer)] rows rel err \(e)")
            #expect(e <= 1e-4)
        }
    }
}
