import LlavaUHD
import TestSupport
import Testing

/// The whole pipeline, image file to generated ids, against every upstream case
/// (Tests/Fixtures/upstream: the original PyTorch code on a tiny random model, float32):
/// through the low-level calls (eval / logits / sample) and through `ChatSession.chat`.
@Suite(.serialized) struct UpstreamPipelineTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        var description: String { name }
    }

    static let cases = Fixtures.upstreamCases.map(Case.init)

    /// The slicing the case was made with (pre-resize on or off, max slices).
    static func slicing(_ manifest: JSONValue) -> SlicingOptions {
        let pre = manifest["preprocess"]?["preresize_long_side"]?.intValue ?? 0
        let maxSlices = manifest["preprocess"]?["max_slice_nums"]?.intValue ?? 9
        return SlicingOptions(preresizeLongSide: pre, maxSlices: maxSlices)
    }

    /// A session on the case's tiny model with the case's slicing, its input image and manifest.
    static func load(_ c: Case) throws -> (ChatSession, RGBImage, JSONValue) {
        let model = try LlavaModel(path: Fixtures.model(c.name))
        let image = try ImageDecoder.decodeFile(Fixtures.upstream(c.name) + "/input.png")
        let manifest = try Fixtures.json(Fixtures.upstream(c.name) + "/manifest.json")
        var options = ChatSession.Options()
        options.slicing = Self.slicing(manifest)
        options.kvCacheType = .float32   // the exact path (16-bit caches: KVCacheTypeTests' bounds)
        return (try ChatSession(model: model, options: options), image, manifest)
    }

    @Test(arguments: cases)
    func lowLevelCallsReproduceUpstream(_ c: Case) throws {
        let (session, image, _) = try Self.load(c)
        let ids = try Fixtures.npy(c.name, "input_ids").ints
        try session.eval(tokens: ids, images: [image])
        let logits = try #require(session.logits)
        let reference = try Fixtures.npy(c.name, "logits_last").floats
        let error = relativeMaxError(logits, reference)
        print("\(c.name): image to last-position logits, error \(error)")
        #expect(error <= 1e-4, "logits_last: max|a−b|/max|ref| = \(error) (tolerance 1e-4)")

        let expected = try Fixtures.npy(c.name, "generated_ids").ints
        var generated: [Int] = []
        for _ in expected.indices {
            let token = try session.sample(SamplingParameters())
            generated.append(token)
            try session.eval(tokens: [token])
        }
        #expect(generated == expected)
    }

    @Test(arguments: cases)
    func chatReproducesUpstream(_ c: Case) throws {
        let (session, image, manifest) = try Self.load(c)
        let question = try #require(manifest["prompt"]?["question"]?.stringValue)
        let expected = try Fixtures.npy(c.name, "generated_ids").ints
        var streamed = ""
        let reply = try session.chat(question, images: [image],
                                     parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: expected.count))) {
            streamed += $0
            return true
        }
        #expect(reply.tokens == expected)
        #expect(streamed == reply.text)
        #expect(reply.promptPositions == manifest["layout"]?["seq_len"]?.intValue)
        #expect(reply.timings.encodedImages == 1)
    }
}

/// Multi-turn chat: the second turn reuses the cached positions of the first and gives the same
/// ids as evaluating the whole two-turn prompt from scratch; an image asked about again is not
/// re-encoded.
@Suite struct ChatSessionTests {
    @Test func followUpReusesCacheAndMatchesFreshEvaluation() throws {
        let name = "small-noslice"
        let model = try LlavaModel(path: Fixtures.model(name))
        let image = try ImageDecoder.decodeFile(Fixtures.upstream(name) + "/input.png")
        var options = ChatSession.Options()
        options.slicing = SlicingOptions(preresizeLongSide: 0)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 6))

        let session = try ChatSession(model: model, options: options)
        let first = try session.chat("What animal is this?", images: [image], parameters: parameters)
        let second = try session.chat("And its colour?", parameters: parameters)
        #expect(second.reusedPositions > first.promptPositions - 1)
        #expect(second.timings.encodedImages == 0)

        // The same conversation built in one go in a fresh session: same answer ids.
        let fresh = try ChatSession(model: model, options: options)
        let prompt = try ChatTemplate(kind: try #require(model.chatTemplate)).encode(
            [.user("What animal is this?", images: 1), .assistant(first.text), .user("And its colour?")],
            with: model.tokenizer).map(Int.init)
        try fresh.eval(tokens: prompt, images: [image])
        var ids: [Int] = []
        for _ in 0..<second.tokens.count {
            let t = try fresh.sample(SamplingParameters())
            ids.append(t)
            try fresh.eval(tokens: [t])
        }
        #expect(ids == second.tokens)

        // Same image again after a reset: taken from the image cache.
        session.reset()
        let again = try session.chat("What animal is this?", images: [image], parameters: parameters)
        #expect(again.timings.cachedImages == 1 && again.timings.encodedImages == 0)
        #expect(again.tokens == first.tokens)
    }

    @Test func contextFullLeavesSessionUnchanged() throws {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        var options = ChatSession.Options()
        options.contextLength = 64
        let session = try ChatSession(model: model, options: options)
        let image = try ImageDecoder.decodeFile(Fixtures.upstream("small-noslice") + "/input.png")
        do {
            try session.chat("Describe.", images: [image])
            Issue.record("a 64-position context cannot hold an image")
        } catch {
            #expect(error.status == .contextFull)
        }
        #expect(session.position == 0 && session.history.isEmpty)
        let reply = try session.chat("Hi", parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 200)))
        #expect(reply.stopReason == .contextFull || reply.stopReason == .endOfSequence)
        #expect(session.position <= 64)
    }

    @Test func cancellingStopsAndSessionStaysUsable() throws {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        let session = try ChatSession(model: model)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 10))
        do {
            try session.chat("Hello", parameters: parameters) { _ in
                session.cancellation.cancel()
                return true
            }
            Issue.record("generation should have been cancelled")
        } catch {
            #expect(error.status == .cancelled)
        }
        #expect(session.history.count == 2)
        let next = try session.chat("Hello again", parameters: parameters)
        #expect(!next.tokens.isEmpty)
        #expect(session.history.count == 4)
    }

    @Test func stopStringsEndTheAnswerAndAreNotShown() throws {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        let session = try ChatSession(model: model)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 12))
        let full = try session.chat("Hello", parameters: parameters)
        let text = full.text
        guard text.count >= 4 else { return }
        let stop = String(text.dropFirst(text.count / 2).prefix(2))
        session.reset()
        let cut = try session.chat("Hello", parameters: ChatParameters(generation: parameters.generation, stopStrings: [stop]))
        #expect(cut.stopReason == .stopString)
        #expect(!cut.text.contains(stop))
        #expect(text.hasPrefix(cut.text))
    }
}
