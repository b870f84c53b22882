import LlavaUHD
import Testing
import TestSupport

/// The language side of every upstream case (Tests/Fixtures/upstream, computed by the upstream
/// LLaVA-UHD code with transformers 4.37.2 in float32), end to end from the projector tokens:
/// the fixture's Hiwin output (`hiwin_slices`, `hiwin_overview`, full float32), grid and
/// `ind_tokens` from the manifest, and `input_ids` are merged by `MultimodalInput` with the
/// tiny model's embedding table (BF16 widened to float32), then prefilled and decoded greedily.
/// Tolerances from the fixture README: 1e-4 · max|ref| for embeddings and logits; argmax and
/// generated ids exact (positions whose top-1/top-2 margin is below the logits tolerance may flip).
@Suite struct UpstreamLanguageTests {
    struct Case {
        let name: String
        let manifest: JSONValue
        let config: ModelConfig
        let decoder: TransformerDecoder
        let input: MultimodalInput
    }

    static func load(_ name: String) throws -> Case {
        let manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let modelDir = Fixtures.model(name)
        let config = try ModelConfig(directory: modelDir)
        let decoder = try TransformerDecoder(config: config.language, weights: WeightStore(directory: modelDir))
        let hidden = config.language.hiddenSize
        let preprocess = try #require(manifest["preprocess"])
        let separators = try #require(preprocess["ind_tokens"]?.arrayValue).compactMap(\.intValue)
        var grid: SliceGrid?
        var views: [[Float]] = []
        if let g = preprocess["grid_cols_rows"]?.arrayValue?.compactMap(\.intValue), g.count == 2 {
            grid = SliceGrid(columns: g[0], rows: g[1])
            let slices = try Fixtures.npy(name, "hiwin_slices").floats
            let perView = ImageTokenLayout.tokensPerView * hidden
            #expect(slices.count == g[0] * g[1] * perView)
            for s in 0..<(g[0] * g[1]) { views.append(Array(slices[(s * perView)..<((s + 1) * perView)])) }
        }
        views.append(try Fixtures.npy(name, "hiwin_overview").floats)
        let image = ProjectedImage(grid: grid, views: views, separators: separators)
        let ids = try Fixtures.npy(name, "input_ids").ints
        let input = try MultimodalInput(promptIds: ids, images: [image], layout: config.imageTokenLayout, hiddenSize: hidden)
        return Case(name: name, manifest: manifest, config: config, decoder: decoder, input: input)
    }

    @Test(arguments: Fixtures.upstreamCases)
    func mergedEmbeddingsMatchUpstream(_ name: String) throws {
        let c = try Self.load(name)
        let layout = try #require(c.manifest["layout"])
        let h = c.config.language.hiddenSize
        #expect(c.input.count == layout["seq_len"]?.intValue)
        #expect(c.input.separatorPositions == layout["separator_positions"]?.arrayValue?.compactMap(\.intValue))
        #expect(c.input.separatorIds == layout["separator_ids"]?.arrayValue?.compactMap(\.intValue))
        let imageGrid = c.input.images[0].grid
        #expect(c.config.imageTokenLayout.positionCount(grid: imageGrid) == layout["image_positions"]?.intValue)

        let embeddings = try c.input.embeddings(decoder: c.decoder)
        let rows = try Fixtures.npy(name, "embeds_rows").ints
        let sub = try Fixtures.npy(name, "embeds_sub").floats
        let picked = rows.flatMap { row(embeddings, $0, width: h) }
        let subError = relativeMaxError(picked, sub)
        let norms = (0..<c.input.count).map { p -> Float in
            var s: Double = 0
            for v in embeddings[(p * h)..<((p + 1) * h)] { s += Double(v) * Double(v) }
            return Float(s.squareRoot())
        }
        let normError = relativeMaxError(norms, try Fixtures.npy(name, "embeds_row_norm").floats)
        print("\(name) [\(c.config.imageTokenLayout)]: \(c.input.count) positions; embeds_sub error \(subError), embeds_row_norm error \(normError)")
        #expect(subError <= 1e-4)
        #expect(normError <= 1e-4)
    }

    @Test(arguments: Fixtures.upstreamCases)
    func prefillAndGreedyDecodingMatchUpstream(_ name: String) throws {
        let c = try Self.load(name)
        let vocab = c.config.language.vocabSize
        let length = c.input.count
        let context = testContext()
        let cache = try KVCache(config: c.config.language, capacity: length + 16)
        let logits = try c.decoder.eval(embeddings: c.input.embeddings(decoder: c.decoder), cache: cache,
                                        logits: .all, context: context)

        let lastRef = try Fixtures.npy(name, "logits_last").floats
        let last = row(logits, length - 1, width: vocab)
        let lastError = relativeMaxError(last, lastRef)

        let maxRef = try Fixtures.npy(name, "maxlogit_all").floats
        let argmaxRef = try Fixtures.npy(name, "argmax_all").ints
        let margins = try Fixtures.npy(name, "top2_margin_all").floats
        var maxLogits: [Float] = [], argmaxes: [Int] = []
        for p in 0..<length {
            let r = logits[(p * vocab)..<((p + 1) * vocab)]
            let a = argmax(r)
            argmaxes.append(a)
            maxLogits.append(r[r.startIndex + a])
        }
        let maxError = relativeMaxError(maxLogits, maxRef)
        // A position may flip only if its reference top-1/top-2 gap is within the logits tolerance.
        let tolerance = 1e-4 * max(lastRef.map(abs).max() ?? 0, maxRef.map(abs).max() ?? 0)
        let flips = (0..<length).filter { argmaxes[$0] != argmaxRef[$0] }
        let unexplained = flips.filter { margins[$0] >= tolerance }

        let expected = try Fixtures.npy(name, "generated_ids").ints
        let result = try c.decoder.generate(after: last, cache: cache,
                                            parameters: GenerationParameters(maxNewTokens: expected.count, stopTokenIds: []),
                                            context: context)
        print("\(name): logits_last error \(lastError), maxlogit_all error \(maxError), argmax flips \(flips.count) (all with margin < \(tolerance)), generated \(result.tokens)")
        #expect(lastError <= 1e-4)
        #expect(maxError <= 1e-4)
        #expect(unexplained.isEmpty, "argmax differs at positions \(unexplained) whose margin exceeds the tolerance")
        #expect(result.tokens == expected)
    }
}
