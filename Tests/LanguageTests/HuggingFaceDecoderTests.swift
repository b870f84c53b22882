import LlavaUHD
import Testing
import TestSupport

/// The decoder against transformers' `LlamaForCausalLM` and `Qwen2ForCausalLM` (tiny random
/// models, float32 compute; Tests/Fixtures/hf, made by scripts/fixtures/make_hf_fixtures.py):
/// logits at every prompt position and at every greedy step within 1e-4 · max|ref| (the
/// fixtures' stated fp32 tolerance), and the 32 greedy tokens identical.
@Suite struct HuggingFaceDecoderTests {
    static let cases = ["llama", "qwen2"]

    /// One fixture (Tests/Fixtures/hf/NAME): its decoder, prompt and an empty 64-position cache.
    struct Fixture {
        let directory: String
        let decoder: TransformerDecoder
        /// The prompt's token ids (`input_ids.npy`).
        let ids: [Int]
        let cache: KVCache
        var vocab: Int { decoder.config.vocabSize }

        init(_ name: String) throws {
            directory = Fixtures.root + "/hf/" + name
            decoder = try loadHuggingFaceDecoder(directory)
            ids = try NPYArray(path: directory + "/input_ids.npy").ints
            cache = try KVCache(config: decoder.config, capacity: 64)
        }

        /// The reference array `name`.npy of the fixture.
        func array(_ name: String) throws -> NPYArray { try NPYArray(path: directory + "/" + name + ".npy") }
    }

    @Test(arguments: cases)
    func promptLogitsMatchTransformers(_ name: String) throws {
        let fixture = try Fixture(name)
        let (decoder, ids, vocab, cache) = (fixture.decoder, fixture.ids, fixture.vocab, fixture.cache)
        let reference = try fixture.array("logits_prompt").floats
        let logits = try decoder.eval(tokens: ids, cache: cache, logits: .all, context: testContext())
        #expect(cache.count == ids.count)
        var worst: Float = 0
        for p in 0..<ids.count {
            worst = max(worst, relativeMaxError(row(logits, p, width: vocab), row(reference, p, width: vocab)))
        }
        print("\(name): prompt logits, worst position max|a−ref|/max|ref| = \(worst)")
        #expect(worst <= 1e-4)
    }

    @Test(arguments: cases)
    func greedyGenerationMatchesTransformers(_ name: String) throws {
        let fixture = try Fixture(name)
        let (decoder, ids, vocab, cache) = (fixture.decoder, fixture.ids, fixture.vocab, fixture.cache)
        let expected = try fixture.array("generated_ids").ints
        let stepLogits = try fixture.array("logits_steps").floats
        let context = testContext()
        var logits = try decoder.eval(tokens: ids, cache: cache, context: context)

        // Step by step, so each step's logits can be compared with transformers' (KV-cache path).
        var worst: Float = 0
        var generated: [Int] = []
        for step in 0..<expected.count {
            worst = max(worst, relativeMaxError(logits, row(stepLogits, step, width: vocab)))
            let token = TokenSampler.argmax(logits)
            generated.append(token)
            if step + 1 < expected.count { logits = try decoder.eval(tokens: [token], cache: cache, context: context) }
        }
        print("\(name): greedy step logits, worst step max|a−ref|/max|ref| = \(worst)")
        #expect(worst <= 1e-4)
        #expect(generated == expected)

        // The generation loop gives the same tokens.
        try cache.truncate(to: 0)
        let first = try decoder.eval(tokens: ids, cache: cache, context: context)
        let result = try decoder.generate(after: first, cache: cache,
                                          parameters: GenerationParameters(maxNewTokens: expected.count),
                                          context: context)
        #expect(result.tokens == expected)
        #expect(result.stopReason == .maxNewTokens)
        #expect(result.pendingToken == expected.last)
        #expect(cache.count == ids.count + expected.count - 1)
    }
}
