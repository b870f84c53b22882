import LlavaUHD
import Testing
import TestSupport

/// CLIPVisionConfig.infer on small synthetic stores: the rules and every way the shapes can
/// disagree with them. (The five tiny models are checked against their manifests in
/// ModelDirectoryTests.)
@Suite struct CLIPInferenceTests {
    static let p = CLIPVisionConfig.checkpointPrefix

    /// A CLIP tower's shape-bearing tensors: width w, `layers` numbered as given, MLP i, patch
    /// p, a position table of `positions` rows.
    static func tower(width w: Int = 128, layers: [Int] = [0, 1, 2], mlp i: Int = 96, patch: Int = 14,
                      positions: Int = 1 + 24 * 24, fc1Rows: [Int: Int] = [:]) -> [(name: String, dtype: DType, shape: [Int])] {
        var t: [(name: String, dtype: DType, shape: [Int])] = [
            (p + "embeddings.class_embedding", .bf16, [w]),
            (p + "embeddings.patch_embedding.weight", .bf16, [w, 3, patch, patch]),
            (p + "embeddings.position_embedding.weight", .bf16, [positions, w]),
        ]
        for l in layers {
            t.append((p + "encoder.layers.\(l).mlp.fc1.weight", .bf16, [fc1Rows[l] ?? i, w]))
            t.append((p + "encoder.layers.\(l).layer_norm1.weight", .bf16, [w]))
        }
        return t
    }

    static func infer(_ tensors: [(name: String, dtype: DType, shape: [Int])],
                      selectLayer: Int = -2) throws(LlavaError) -> CLIPVisionConfig {
        let dir = TestFiles.makeTemporaryDirectory("clip")
        defer { TestFiles.remove(dir) }
        TestFiles.writeSafetensors(tensors, to: dir + "/model.safetensors")
        return try CLIPVisionConfig.infer(from: try WeightStore(directory: dir), selectLayer: selectLayer)
    }

    @Test func infersEveryHyperParameter() throws {
        let c = try Self.infer(Self.tower(width: 192, layers: [2, 0, 1, 3], mlp: 80, patch: 7, positions: 1 + 5 * 5), selectLayer: -3)
        #expect(c == CLIPVisionConfig(hiddenSize: 192, layerCount: 4, headCount: 3, intermediateSize: 80, patchSize: 7,
                                      imageSize: 35, layerNormEps: 1e-5, selectLayer: -3))
        #expect(c.gridSide == 5)
    }

    @Test(arguments: [-4, 3])
    func selectLayerWithinTheHiddenStates(_ layer: Int) throws {
        #expect(try Self.infer(Self.tower(), selectLayer: layer).selectLayer == layer)
    }

    @Test(arguments: [-5, 4, 100])
    func selectLayerOutOfRangeIsBadConfig(_ layer: Int) {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(), selectLayer: layer) }
        #expect(error?.status == .badConfig)
        #expect(error?.message.contains("mm_vision_select_layer \(layer)") == true)
    }

    @Test func layerGapIsBadWeights() {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(layers: [0, 1, 3])) }
        #expect(error?.status == .badWeights)
        #expect(error?.message.contains("layer 2 is missing") == true)
    }

    @Test func layersNotStartingAtZeroAreBadWeights() {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(layers: [1, 2])) }
        #expect(error?.status == .badWeights)
    }

    @Test func nonCanonicalLayerNumberIsBadWeights() {
        var t = Self.tower(layers: [0])
        t.append((Self.p + "encoder.layers.01.mlp.fc1.weight", .bf16, [96, 128]))
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(t) }
        #expect(error?.status == .badWeights)
        #expect(error?.message.contains("encoder.layers.01") == true)
    }

    @Test func noLayersIsMissingTensor() {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(layers: [])) }
        #expect(error?.status == .missingTensor)
    }

    @Test func missingClassEmbeddingIsMissingTensor() {
        let t = Self.tower().filter { !$0.name.hasSuffix("class_embedding") }
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(t) }
        #expect(error?.status == .missingTensor && error?.message.contains("class_embedding") == true)
    }

    @Test func positionRowsMustBeOnePlusASquare() {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(positions: 1 + 24 * 23)) }
        #expect(error?.status == .tensorMismatch && error?.message.contains("position_embedding") == true)
    }

    @Test func widthMustBeAMultipleOf64() {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(width: 100)) }
        #expect(error?.status == .tensorMismatch && error?.message.contains("64") == true)
    }

    @Test func patchKernelMustBeSquareRGB() {
        var t = Self.tower()
        t[1] = (Self.p + "embeddings.patch_embedding.weight", .bf16, [128, 3, 14, 12])
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(t) }
        #expect(error?.status == .tensorMismatch && error?.message.contains("patch_embedding") == true)
    }

    @Test func layersMustAgreeOnTheMLPWidth() {
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(Self.tower(fc1Rows: [2: 64])) }
        #expect(error?.status == .tensorMismatch && error?.message.contains("encoder.layers.2.mlp.fc1.weight") == true)
    }

    @Test func nonFloatDTypeIsTensorMismatch() {
        var t = Self.tower()
        t[0] = (Self.p + "embeddings.class_embedding", .i16, [128])
        let error = thrownError { () throws(LlavaError) in _ = try Self.infer(t) }
        #expect(error?.status == .tensorMismatch && error?.message.contains("dtype I16") == true)
    }
}
