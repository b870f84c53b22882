@testable import LlavaUHD
import Testing
import TestSupport

/// The model's prefix cache (`LlavaModel.prefixCache`): a session whose prompt starts like one
/// another session evaluated copies those rows and answers as without reuse (the same greedy
/// tokens, logits within float rounding); rows of one KV type never serve another; the store
/// stays within its bound.
@Suite struct PrefixCacheTests {
    static let name = "small-noslice"
    static let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 8))

    static func options(_ type: KVCacheType = .float16) -> ChatSession.Options {
        var options = ChatSession.Options()
        options.slicing = SlicingOptions(preresizeLongSide: 0)
        options.kvCacheType = type
        return options
    }

    /// A model with the prefix cache on (it is off by default).
    static func model() throws -> LlavaModel {
        try LlavaModel(path: Fixtures.model(name), options: .init(prefixCacheBytes: LlavaModel.LoadOptions.suggestedPrefixCacheBytes))
    }

    static func image() throws -> RGBImage { try ImageDecoder.decodeFile(Fixtures.upstream(name) + "/input.png") }

    @Test(arguments: [KVCacheType.float32, .float16])
    func reuseGivesTheSameTokensAndLogitsAsNoReuse(type: KVCacheType) throws {
        let shared = try Self.model()
        let alone = try LlavaModel(path: Fixtures.model(Self.name))  // the default: no prefix cache
        let image = try Self.image()
        try ChatSession(model: shared, options: Self.options(type)).chat("What animal is this?", images: [image], parameters: Self.parameters)
        #expect(shared.prefixCache.usage.blocks > 0)

        let reusing = try ChatSession(model: shared, options: Self.options(type))
        let reply = try reusing.chat("Describe the picture.", images: [image], parameters: Self.parameters)
        let plain = try ChatSession(model: alone, options: Self.options(type))
        let expected = try plain.chat("Describe the picture.", images: [image], parameters: Self.parameters)
        #expect(expected.reusedPositions == 0)
        // Everything before the question, in whole blocks of 16.
        #expect(reply.reusedPositions >= 144 && reply.reusedPositions % 16 == 0)
        #expect(reply.tokens == expected.tokens && reply.text == expected.text)
        // The copied rows come from another session's prefill, a pass over a different number
        // of positions, and the matrix products round differently with the row count (as a
        // session's own follow-up turns do): the logits agree to float rounding, not bit for bit
        // (measured: 3.1e-7 with float32 rows, 1.1e-6 with f16 rows; bounds 30 and 90 times that).
        let error = relativeMaxError(reusing.logits ?? [], plain.logits ?? [1])
        print("prefix reuse, KV \(type): logits' relative max error \(error)")
        #expect(error <= (type == .float32 ? 1e-5 : 1e-4))

        // The low-level path reuses too, with the same logits.
        let ids = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203]
        let first = try ChatSession(model: shared, options: Self.options(type))
        try first.eval(tokens: ids + [29889])
        let second = try ChatSession(model: shared, options: Self.options(type))
        try second.eval(tokens: ids + ids + [13])
        let reference = try ChatSession(model: alone, options: Self.options(type))
        try reference.eval(tokens: ids + ids + [13])
        #expect(relativeMaxError(second.logits ?? [], reference.logits ?? [1]) <= (type == .float32 ? 1e-5 : 1e-4))
    }

    @Test func rowsOfOneKVTypeDoNotServeAnother() throws {
        let model = try Self.model()
        let image = try Self.image()
        try ChatSession(model: model, options: Self.options(.float16)).chat("Hi", images: [image], parameters: Self.parameters)
        let other = try ChatSession(model: model, options: Self.options(.bfloat16)).chat("Hi", images: [image], parameters: Self.parameters)
        #expect(other.reusedPositions == 0)
    }

    @Test func storeStaysWithinItsBound() throws {
        let probe = try LlavaModel(path: Fixtures.model(Self.name))
        let c = probe.languageConfig
        let block = 2 * c.layerCount * 16 * c.kvHeadCount * c.headDim * KVCacheType.float16.bytesPerValue
        let model = try LlavaModel(path: Fixtures.model(Self.name), options: .init(prefixCacheBytes: 3 * block))
        let image = try Self.image()
        for question in ["Hi", "What is it?", "Where?"] {
            try ChatSession(model: model, options: Self.options()).chat(question, images: [image], parameters: Self.parameters)
            #expect(model.prefixCache.usage.bytes <= 3 * block)
        }
        #expect(model.prefixCache.usage.blocks == 3)
        // A store smaller than one block keeps nothing.
        let tiny = try LlavaModel(path: Fixtures.model(Self.name), options: .init(prefixCacheBytes: block - 1))
        try ChatSession(model: tiny, options: Self.options()).chat("Hi", images: [image], parameters: Self.parameters)
        #expect(tiny.prefixCache.usage.blocks == 0)
    }

    /// When the store is full the least recently used chain leaves, its deepest block first;
    /// a chain used since (a lookup touches every block on its path) stays, rows intact.
    @Test func evictionTakesTheLeastRecentlyUsedLeavesFirst() throws {
        let config = try LlavaModel(path: Fixtures.model(Self.name)).languageConfig
        let b = 4
        let blockBytes = 2 * config.layerCount * b * config.kvHeadCount * config.headDim * KVCacheType.float32.bytesPerValue
        let store = PrefixCache(byteCapacity: 5 * blockBytes, blockPositions: b)
        /// A prompt of `blocks` blocks starting with token `first`, its cache rows filled with
        /// values that name the prompt and the position.
        func publish(first: Int, blocks: Int) throws -> [PromptBuilder.PositionKey] {
            let keys = (0..<(blocks * b)).map { PromptBuilder.PositionKey.token($0 == 0 ? first : $0) }
            let cache = try KVCache(config: config, capacity: keys.count, type: .float32)
            for layer in 0..<cache.layerCount {
                for m in [cache.keys(layer: layer), cache.values(layer: layer)] {
                    for i in 0..<(keys.count * cache.rowWidth) { m.floats[i] = Float(first * 100_000 + i) }
                }
            }
            cache.commit(count: keys.count)
            store.publish(keys: keys, cache: cache)
            return keys
        }
        /// Positions the store gives back for `keys`, checking the rows it copies.
        func reused(_ keys: [PromptBuilder.PositionKey], first: Int) throws -> Int {
            let cache = try KVCache(config: config, capacity: keys.count, type: .float32)
            let n = store.restore(keys: keys, limit: keys.count, into: cache)
            let values = cache.values(layer: cache.layerCount - 1).floats
            for i in 0..<(n * cache.rowWidth) where values[i] != Float(first * 100_000 + i) {
                Issue.record("position \(i / cache.rowWidth) of prompt \(first): row not the one published")
                break
            }
            return n
        }
        let a = try publish(first: 1, blocks: 2)
        let c = try publish(first: 2, blocks: 2)
        #expect(store.usage.blocks == 4)
        #expect(try reused(a, first: 1) == 2 * b)  // prompt 1 is now more recent than prompt 2
        let d = try publish(first: 3, blocks: 3)  // 7 blocks offered, 5 fit: prompt 2's two leave
        #expect(store.usage.blocks == 5 && store.usage.bytes == 5 * blockBytes)
        #expect(try reused(c, first: 2) == 0)
        #expect(try reused(a, first: 1) == 2 * b)
        #expect(try reused(d, first: 3) == 3 * b)
        // One more block over the bound: only the deepest block of the older chain (prompt 1's
        // second) leaves, so prompt 1 keeps its first block.
        _ = try publish(first: 4, blocks: 1)
        #expect(store.usage.blocks == 5)
        #expect(try reused(a, first: 1) == b)
        #expect(try reused(d, first: 3) == 3 * b)
    }

    /// A loaded saved session offers its rows: a new session with the same start reuses them.
    @Test func loadedSessionsFeedTheStore() throws {
        let directory = TestFiles.makeTemporaryDirectory("prefix-cache")
        defer { TestFiles.remove(directory) }
        let writer = try Self.model()
        let image = try Self.image()
        let saved = try ChatSession(model: writer, options: Self.options())
        try saved.chat("What animal is this?", images: [image], parameters: Self.parameters)
        try SessionFile.save(saved, to: directory + "/s.luhds")

        let model = try Self.model()
        _ = try SessionFile.load(model: model, path: directory + "/s.luhds", options: Self.options())
        let reply = try ChatSession(model: model, options: Self.options()).chat("Tell me more.", images: [image], parameters: Self.parameters)
        #expect(reply.reusedPositions >= 144)
    }
}
