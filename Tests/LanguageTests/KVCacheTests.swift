import LlavaUHD
import Testing
import TestSupport

/// The KV cache against the decoder's own whole-sequence evaluation (the reference the HF
/// tests anchor): evaluating a sequence one position at a time, in uneven chunks, or in
/// small prefill batches gives the logits of one whole-sequence prefill up to float32
/// summation order (≤ 1e-5 · max|ref|); rewinding and re-evaluating is bit-identical.
@Suite struct KVCacheTests {
    static let models = ["llama", "qwen2"]

    static func decoder(_ name: String, batchSize: Int = 512) throws -> TransformerDecoder {
        let dir = Fixtures.root + "/hf/" + name
        return try TransformerDecoder(config: huggingFaceConfig(dir), weights: WeightStore(directory: dir), batchSize: batchSize)
    }

    static func prompt(_ name: String) throws -> [Int] {
        try NPYArray(path: Fixtures.root + "/hf/" + name + "/input_ids.npy").ints
    }

    @Test(arguments: models)
    func stepByStepEqualsPrefill(_ name: String) throws {
        let decoder = try Self.decoder(name)
        let ids = try Self.prompt(name)
        let vocab = decoder.config.vocabSize
        let context = testContext()
        let full = try decoder.eval(tokens: ids, cache: KVCache(config: decoder.config, capacity: 32), logits: .all, context: context)

        let cache = try KVCache(config: decoder.config, capacity: 32)
        var worst: Float = 0
        for (p, id) in ids.enumerated() {
            let logits = try decoder.eval(tokens: [id], cache: cache, context: context)
            #expect(cache.count == p + 1)
            worst = max(worst, relativeMaxError(logits, row(full, p, width: vocab)))
        }
        print("\(name): one position at a time vs one prefill: \(worst)")
        #expect(worst <= 1e-5)
    }

    @Test(arguments: models)
    func chunksAndBatchesEqualPrefill(_ name: String) throws {
        let ids = try Self.prompt(name)
        let context = testContext()
        let decoder = try Self.decoder(name)
        let vocab = decoder.config.vocabSize
        let full = try decoder.eval(tokens: ids, cache: KVCache(config: decoder.config, capacity: 32), logits: .all, context: context)

        // Uneven chunks appended to one cache.
        let cache = try KVCache(config: decoder.config, capacity: 32)
        var pieces: [Float] = []
        for range in [0..<7, 7..<8, 8..<11, 11..<ids.count] {
            pieces += try decoder.eval(tokens: Array(ids[range]), cache: cache, logits: .all, context: context)
        }
        let chunkError = relativeMaxError(pieces, full)

        // A decoder that prefills at most 5 positions per pass.
        let small = try Self.decoder(name, batchSize: 5)
        let batched = try small.eval(tokens: ids, cache: KVCache(config: small.config, capacity: 32), logits: .all, context: context)
        let batchError = relativeMaxError(batched, full)

        // .last is the last row of .all; .none returns nothing.
        let last = try decoder.eval(tokens: ids, cache: KVCache(config: decoder.config, capacity: 32), context: context)
        let none = try decoder.eval(tokens: ids, cache: KVCache(config: decoder.config, capacity: 32), logits: .none, context: context)
        print("\(name): chunks \(chunkError), batches of 5 \(batchError)")
        #expect(chunkError <= 1e-5)
        #expect(batchError <= 1e-5)
        #expect(relativeMaxError(last, row(full, ids.count - 1, width: vocab)) <= 1e-5)
        #expect(none.isEmpty)
    }

    @Test(arguments: models)
    func rewindAndReevaluateIsExact(_ name: String) throws {
        let decoder = try Self.decoder(name)
        let ids = try Self.prompt(name)
        let context = testContext()
        let cache = try KVCache(config: decoder.config, capacity: 32)
        _ = try decoder.eval(tokens: Array(ids[..<10]), cache: cache, logits: .none, context: context)
        let first = try decoder.eval(tokens: Array(ids[10...]), cache: cache, logits: .all, context: context)
        #expect(cache.count == ids.count)

        try cache.truncate(to: 10)
        #expect(cache.count == 10)
        let again = try decoder.eval(tokens: Array(ids[10...]), cache: cache, logits: .all, context: context)
        #expect(again == first, "re-evaluation after a rewind differs")

        // A different continuation after the rewind, then back: still exact.
        try cache.truncate(to: 10)
        _ = try decoder.eval(tokens: [3, 4, 5], cache: cache, logits: .none, context: context)
        try cache.truncate(to: 10)
        let third = try decoder.eval(tokens: Array(ids[10...]), cache: cache, logits: .all, context: context)
        #expect(third == first, "re-evaluation after another continuation differs")

        #expect(throws: LlavaError.self) { try cache.truncate(to: ids.count + 1) }
        #expect(throws: LlavaError.self) { try cache.truncate(to: -1) }
        cache.reset()
        #expect(cache.count == 0)
    }

    @Test func contextFullLeavesTheCacheUsable() throws {
        let decoder = try Self.decoder("llama")
        let ids = try Self.prompt("llama")
        let context = testContext()
        let cache = try KVCache(config: decoder.config, capacity: 16)
        _ = try decoder.eval(tokens: Array(ids[..<10]), cache: cache, logits: .none, context: context)
        let error = #expect(throws: LlavaError.self) {
            try decoder.eval(tokens: Array(ids[10..<17]), cache: cache, context: context)
        }
        #expect(error?.status == .contextFull)
        #expect(cache.count == 10)
        let fits = try decoder.eval(tokens: Array(ids[10..<16]), cache: cache, context: context)
        #expect(cache.count == 16 && cache.remaining == 0)
        let reference = try decoder.eval(tokens: Array(ids[..<16]), cache: KVCache(config: decoder.config, capacity: 16), context: context)
        #expect(relativeMaxError(fits, reference) <= 1e-5)
        #expect(throws: LlavaError.self) { try decoder.eval(tokens: [1], cache: cache, context: context) }

        // Generation stops, without an error, when the next token has no room.
        try cache.truncate(to: 12)
        let logits = try decoder.eval(tokens: [ids[12]], cache: cache, context: context)
        let result = try decoder.generate(after: logits, cache: cache, parameters: GenerationParameters(maxNewTokens: 10),
                                          context: context)
        #expect(result.stopReason == .contextFull)
        #expect(result.tokens.count == 4)
        #expect(cache.count == 16)
        #expect(result.pendingToken == result.tokens.last)
    }

    @Test func rejectsBadCachesAndInputs() throws {
        let llama = try Self.decoder("llama")
        let qwen = try Self.decoder("qwen2")
        let context = testContext()
        #expect(throws: LlavaError.self) { try KVCache(config: llama.config, capacity: 0) }
        #expect(throws: LlavaError.self) {
            try KVCache(config: llama.config, capacity: llama.config.maxPositionEmbeddings + 1)
        }
        var shallower = qwen.config
        shallower.layerCount = 1
        let otherCache = try KVCache(config: shallower, capacity: 8)
        let mismatch = #expect(throws: LlavaError.self) { try qwen.eval(tokens: [1, 2], cache: otherCache, context: context) }
        #expect(mismatch?.status == .invalidArgument)
        let cache = try KVCache(config: llama.config, capacity: 8)
        #expect(throws: LlavaError.self) { try llama.eval(tokens: [], cache: cache, context: context) }
        let outside = #expect(throws: LlavaError.self) { try llama.eval(tokens: [1, 512], cache: cache, context: context) }
        #expect(outside?.status == .invalidArgument)
        #expect(throws: LlavaError.self) { try llama.eval(embeddings: [Float](repeating: 0, count: 127), cache: cache, context: context) }
        #expect(cache.count == 0)
        #expect(KVCache.byteCount(config: llama.config, capacity: 8) == 2 * 2 * 8 * 128 * 4)
    }
}
