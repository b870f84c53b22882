import LlavaUHD
import TestSupport
import Testing

/// `CLIPVisionEncoder` against the upstream cases (AdaptCLIPVisionTransformer in float32,
/// layer −2, CLS dropped): vit_overview.npy in full, vit_slices_sub.npy at vit_slices_idx.npy
/// (float32) and vit_slices_f16.npy (float16). The views are the fixture's own rgb_* arrays, so
/// a resize difference cannot leak in. Weights: the tiny model directory (BF16, upcast).
@Suite struct CLIPVisionEncoderTests {
    static let prefix = "model.vision_tower.vision_tower.vision_model."

    static func encoder(_ caseName: String) throws -> CLIPVisionEncoder {
        let store = try WeightStore(directory: Fixtures.model(caseName))
        return try CLIPVisionEncoder(store: store, prefix: prefix, config: UpstreamCaseFiles.clipConfig(caseName))
    }

    @Test(arguments: Fixtures.upstreamCases)
    func matchesUpstream(_ caseName: String) throws {
        let encoder = try Self.encoder(caseName)
        #expect(encoder.layersUsed == encoder.config.layerCount - 1)
        let views = try UpstreamCaseFiles.fixtureViews(caseName).map { CLIPNormalization.openAI.normalize($0) }
        let features = try encoder.encode(views, context: ComputeContext(threads: 2))
        try #require(features.count == views.count)
        let c = encoder.config.hiddenSize

        let overview = try Fixtures.npy(caseName, "vit_overview")
        let last = try #require(features.last)
        #expect(overview.shape == [last.rows, last.columns, c])
        let eOverview = relativeMaxError(last.values, overview.floats)
        print("\(caseName): vit_overview rel err \(eOverview)")
        #expect(eOverview <= 1e-4)

        let slices = features.dropLast()
        guard !slices.isEmpty else { return }
        let idx = try Fixtures.npy(caseName, "vit_slices_idx").ints
        let sub = try Fixtures.npy(caseName, "vit_slices_sub")
        #expect(sub.shape == [slices.count, idx.count, c])
        var mine: [Float] = []
        for s in slices { for i in idx { mine += s.values[(i * c)..<((i + 1) * c)] } }
        let eSub = relativeMaxError(mine, sub.floats)
        print("\(caseName): vit_slices_sub rel err \(eSub)")
        #expect(eSub <= 1e-4)

        let f16 = try Fixtures.npy(caseName, "vit_slices_f16")
        #expect(f16.shape == [slices.count, slices[0].rows, slices[0].columns, c])
        let eF16 = relativeMaxError(slices.flatMap(\.values), f16.floats)
        print("\(caseName): vit_slices_f16 rel err \(eF16)")
        #expect(eF16 <= 1e-3)
    }

    /// Each view alone gives the same features as the batch (every operation is per view), and
    /// the thread count does not matter.
    @Test func batchingAndThreadsDoNotChangeResults() throws {
        let caseName = "chelsea-qwen2-mask5"
        let encoder = try Self.encoder(caseName)
        let views = try UpstreamCaseFiles.fixtureViews(caseName).map { CLIPNormalization.openAI.normalize($0) }
        let batch = try encoder.encode(views, context: ComputeContext(threads: 2))
        let oneThread = try encoder.encode(views, context: ComputeContext(threads: 1))
        for (i, view) in views.enumerated() {
            let alone = try encoder.encode([view], context: ComputeContext(threads: 1))
            #expect(relativeMaxError(alone[0].values, batch[i].values) <= 1e-6)
            #expect(oneThread[i].values == batch[i].values)
        }
    }

    @Test func rejectsBadInputs() throws {
        let caseName = "small-noslice"
        let store = try WeightStore(directory: Fixtures.model(caseName))
        let config = try UpstreamCaseFiles.clipConfig(caseName)
        let encoder = try CLIPVisionEncoder(store: store, prefix: Self.prefix, config: config)
        let odd = try PixelTensor(width: 15, height: 14, values: [Float](repeating: 0, count: 3 * 15 * 14))
        #expect(throws: LlavaError.self) { try encoder.encode([odd], context: ComputeContext(threads: 1)) }

        var wrongWidth = config
        wrongWidth.hiddenSize = 512
        #expect { try CLIPVisionEncoder(store: store, prefix: Self.prefix, config: wrongWidth) } throws: { error in
            guard let e = error as? LlavaError else { return false }
            return e.status == .tensorMismatch && e.message.contains("class_embedding")
        }
        var tooManyLayers = config
        tooManyLayers.layerCount = 5
        tooManyLayers.selectLayer = -1
        #expect { try CLIPVisionEncoder(store: store, prefix: Self.prefix, config: tooManyLayers) } throws: { error in
            guard let e = error as? LlavaError else { return false }
            return e.status == .missingTensor && e.message.contains("encoder.layers.2.")
        }
        #expect(throws: LlavaError.self) { try CLIPVisionEncoder(store: store, prefix: "vision_model.", config: config) }

        let stop = ComputeContext(threads: 1, shouldAbort: { true })
        let view = try PixelTensor(width: 28, height: 14, values: [Float](repeating: 0.5, count: 3 * 28 * 14))
        #expect { try encoder.encode([view], context: stop) } throws: { error in
            (error as? LlavaError)?.status == .cancelled
        }
    }
}
