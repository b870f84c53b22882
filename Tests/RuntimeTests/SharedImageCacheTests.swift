import Dispatch
import LlavaUHD
import Synchronization
import TestSupport
import Testing

/// The model-level image cache (`LlavaModel.imageCache`): a session asking about a picture that
/// another session of the same model encoded skips the vision stage and answers exactly as if it
/// had encoded it; the cache is bounded in bytes (least recently used out); sessions with
/// `imageCacheCapacity` 0 neither read nor fill it.
@Suite struct SharedImageCacheTests {
    static let name = "small-noslice"
    static let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 6))

    static func options(capacity: Int = 4) -> ChatSession.Options {
        var options = ChatSession.Options()
        options.slicing = SlicingOptions(preresizeLongSide: 0)
        options.imageCacheCapacity = capacity
        return options
    }

    static func image() throws -> RGBImage {
        try ImageDecoder.decodeFile(Fixtures.upstream(name) + "/input.png")
    }

    /// The same picture with its first pixel changed: another content hash.
    static func otherImage() throws -> RGBImage {
        var other = try image()
        other.pixels[0] ^= 0xFF
        return other
    }

    @Test func secondSessionSkipsTheVisionStageWithTheSameAnswer() throws {
        let model = try LlavaModel(path: Fixtures.model(Self.name))
        let image = try Self.image()
        let first = try ChatSession(model: model, options: Self.options())
            .chat("What animal is this?", images: [image], parameters: Self.parameters)
        #expect(first.timings.encodedImages == 1 && first.timings.cachedImages == 0)
        #expect(model.imageCache.usage.count == 1)

        let second = try ChatSession(model: model, options: Self.options())
            .chat("What animal is this?", images: [image], parameters: Self.parameters)
        #expect(second.timings.encodedImages == 0 && second.timings.cachedImages == 1)
        #expect(second.timings.imageEncoding == 0)
        #expect(second.tokens == first.tokens && second.text == first.text)

        // A session with caching off encodes again, and answers the same.
        let uncached = try ChatSession(model: model, options: Self.options(capacity: 0))
            .chat("What animal is this?", images: [image], parameters: Self.parameters)
        #expect(uncached.timings.encodedImages == 1 && uncached.timings.cachedImages == 0)
        #expect(uncached.tokens == first.tokens)
    }

    @Test func modelCacheOffMeansEverySessionEncodes() throws {
        let model = try LlavaModel(path: Fixtures.model(Self.name), options: .init(imageCacheBytes: 0))
        let image = try Self.image()
        for _ in 0..<2 {
            let reply = try ChatSession(model: model, options: Self.options())
                .chat("Hi", images: [image], parameters: Self.parameters)
            #expect(reply.timings.encodedImages == 1 && reply.timings.cachedImages == 0)
        }
        #expect(model.imageCache.usage.count == 0)
    }

    @Test func boundedInBytesLeastRecentlyUsedFirstOut() throws {
        // Measure one encoding's size, then give a model room for exactly one image.
        let probe = try LlavaModel(path: Fixtures.model(Self.name))
        _ = try ChatSession(model: probe, options: Self.options()).chat("Hi", images: [Self.image()], parameters: Self.parameters)
        let oneImage = probe.imageCache.usage.bytes
        #expect(oneImage > 0)

        let model = try LlavaModel(path: Fixtures.model(Self.name), options: .init(imageCacheBytes: oneImage))
        let a = try Self.image(), b = try Self.otherImage()
        let writer = try ChatSession(model: model, options: Self.options())
        try writer.chat("Hi", images: [a], parameters: Self.parameters)
        try writer.chat("Hi", images: [b], parameters: Self.parameters)
        #expect(model.imageCache.usage == (1, oneImage))

        // b is in the model's cache, a was evicted from it (the writer session still has both).
        let reader = try ChatSession(model: model, options: Self.options())
        #expect(try reader.chat("Hi", images: [b], parameters: Self.parameters).timings.cachedImages == 1)
        reader.reset()
        #expect(try reader.chat("Hi", images: [a], parameters: Self.parameters).timings.encodedImages == 1)
        writer.reset()
        #expect(try writer.chat("Hi", images: [a], parameters: Self.parameters).timings.cachedImages == 1)
    }

    @Test func sessionsOnManyThreadsShareOneEncoding() throws {
        let model = try LlavaModel(path: Fixtures.model(Self.name), options: .init(threads: 1))
        let image = try Self.image()
        let reference = try ChatSession(model: model, options: Self.options())
            .chat("What animal is this?", images: [image], parameters: Self.parameters)
        let replies = Mutex<[Result<ChatReply, LlavaError>]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let reply = Result { () throws(LlavaError) in
                try ChatSession(model: model, options: Self.options())
                    .chat("What animal is this?", images: [image], parameters: Self.parameters)
            }
            replies.withLock { $0.append(reply) }
        }
        let all = replies.withLock { $0 }
        #expect(all.count == 4)
        for result in all {
            let reply = try result.get()
            #expect(reply.tokens == reference.tokens && reply.timings.cachedImages == 1)
        }
    }
}
