import LlavaUHD
import Testing
import TestSupport

/// 16-bit KV caches against the float32 cache (the exact path), on the tiny transformers
/// models (Tests/Fixtures/hf) and the upstream LLaVA-UHD cases (Tests/Fixtures/upstream).
///
/// Stated bounds, as max|a − ref| / max|ref| over all logits compared:
/// * F16 cache: ≤ 1e-3 of the float32 cache's logits (prompt, every greedy step, upstream
///   prefill); keys and values carry a relative rounding of at most 2⁻¹¹.
/// * BF16 cache: ≤ 1e-2 (rounding ≤ 2⁻⁸). Measured on these fixtures: F16 ≤ 3.3e-4, BF16 ≤ 2.3e-3.
/// * The same cache type evaluated position by position or in one prefill: ≤ 1e-5 (the cache
///   content is the same, rounded once; only float32 summation orders differ).
/// Greedy tokens are compared only where the float32 path's top-1/top-2 margin exceeds the bound.
@Suite struct KVCacheTypeTests {
    static let models = ["llama", "qwen2"]
    static let bounds: [KVCacheType: Float] = [.float16: 1e-3, .bfloat16: 1e-2]
    static let narrowTypes: [KVCacheType] = [.float16, .bfloat16]

    static func decoder(_ name: String, batchSize: Int = 512) throws -> TransformerDecoder {
        let dir = Fixtures.root + "/hf/" + name
        return try TransformerDecoder(config: huggingFaceConfig(dir), weights: WeightStore(directory: dir), batchSize: batchSize)
    }

    static func prompt(_ name: String) throws -> [Int] {
        try NPYArray(path: Fixtures.root + "/hf/" + name + "/input_ids.npy").ints
    }

    /// Prompt logits at every position, then `steps` greedy steps of the float32 path's tokens
    /// fed to both caches (so a near-tie cannot make them diverge), one row per step.
    static func run(_ decoder: TransformerDecoder, _ ids: [Int], type: KVCacheType, feed: [Int]) throws -> [Float] {
        let cache = try KVCache(config: decoder.config, capacity: ids.count + feed.count + 1, type: type)
        let context = testContext()
        var all = try decoder.eval(tokens: ids, cache: cache, logits: .all, context: context)
        for t in feed { all += try decoder.eval(tokens: [t], cache: cache, context: context) }
        return all
    }

    @Test(arguments: models, narrowTypes)
    func logitsWithinBoundOfFloat32Cache(_ name: String, _ type: KVCacheType) throws {
        let decoder = try Self.decoder(name)
        let ids = try Self.prompt(name)
        let vocab = decoder.config.vocabSize
        // The float32 path's greedy continuation (16 tokens).
        let exactCache = try KVCache(config: decoder.config, capacity: ids.count + 17)
        let first = try decoder.eval(tokens: ids, cache: exactCache, context: testContext())
        let greedy = try decoder.generate(after: first, cache: exactCache,
                                          parameters: GenerationParameters(maxNewTokens: 16, stopTokenIds: []),
                                          context: testContext()).tokens
        let exact = try Self.run(decoder, ids, type: .float32, feed: greedy)
        let narrow = try Self.run(decoder, ids, type: type, feed: greedy)
        var worst: Float = 0
        for p in 0..<(exact.count / vocab) {
            worst = max(worst, relativeMaxError(row(narrow, p, width: vocab), row(exact, p, width: vocab)))
        }
        let bound = try #require(Self.bounds[type])
        print("\(name) \(type) cache: worst row of \(exact.count / vocab) vs float32 cache \(worst) (bound \(bound))")
        #expect(worst <= bound)
        // Greedy argmax agrees wherever the float32 margin exceeds the error.
        for p in 0..<(exact.count / vocab) {
            let e = row(exact, p, width: vocab), n = row(narrow, p, width: vocab)
            let top = argmax(e), scale = e.map(abs).max() ?? 0
            let runnerUp = e.indices.filter { $0 != top }.map { e[$0] }.max() ?? -.infinity
            if e[top] - runnerUp > 2 * bound * scale { #expect(argmax(n) == top, "position \(p)") }
        }
    }

    @Test(arguments: models, narrowTypes)
    func stepByStepEqualsPrefill(_ name: String, _ type: KVCacheType) throws {
        let decoder = try Self.decoder(name)
        let ids = try Self.prompt(name)
        let vocab = decoder.config.vocabSize
        let context = testContext()
        let full = try decoder.eval(tokens: ids, cache: KVCache(config: decoder.config, capacity: 32, type: type),
                                    logits: .all, context: context)
        let cache = try KVCache(config: decoder.config, capacity: 32, type: type)
        var worst: Float = 0
        for (p, id) in ids.enumerated() {
            let logits = try decoder.eval(tokens: [id], cache: cache, context: context)
            worst = max(worst, relativeMaxError(logits, row(full, p, width: vocab)))
        }
        print("\(name) \(type) cache: one position at a time vs one prefill: \(worst)")
        #expect(worst <= 1e-5)
    }

    @Test(arguments: Fixtures.upstreamCases)
    func upstreamPrefillWithinBound(_ name: String) throws {
        let c = try UpstreamLanguageTests.load(name)
        let embeddings = try c.input.embeddings(decoder: c.decoder)
        let context = testContext()
        func logits(_ type: KVCacheType) throws -> [Float] {
            let cache = try KVCache(config: c.config.language, capacity: c.input.count, type: type)
            return try c.decoder.eval(embeddings: embeddings, cache: cache, logits: .all, context: context)
        }
        let exact = try logits(.float32)
        for type in Self.narrowTypes {
            let error = relativeMaxError(try logits(type), exact)
            let bound = try #require(Self.bounds[type])
            print("\(name) \(type) cache: prefill logits (\(c.input.count) positions) vs float32 cache \(error) (bound \(bound))")
            #expect(error <= bound)
        }
    }

    @Test func sixteenBitStorageHalvesTheCache() throws {
        let config = try Self.decoder("llama").config
        let f32 = try KVCache(config: config, capacity: 16)
        for type in Self.narrowTypes {
            let narrow = try KVCache(config: config, capacity: 16, type: type)
            #expect(narrow.bytesPerPosition * 2 == f32.bytesPerPosition)
            #expect(KVCache.byteCount(config: config, capacity: 16, type: type) * 2 == KVCache.byteCount(config: config, capacity: 16))
        }
        #expect(f32.bytesPerPosition == 2 * config.layerCount * config.kvHeadCount * config.headDim * 4)
        #expect(KVCacheType(name: "f16") == .float16 && KVCacheType(name: "bf16") == .bfloat16 && KVCacheType(name: "q4") == nil)
    }
}
