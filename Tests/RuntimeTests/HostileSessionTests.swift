import LlavaUHD
import Testing
import TestSupport

/// Session-level cases of issue 12: `<image>` as text, costs refused before they are paid, and
/// stop strings that keep matching partially.
@Suite struct HostileSessionTests {
    static let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 3))

    /// A system prompt with "<image>" used to make every chat fail ("1 image marker(s) but 0
    /// images"); a user text with "<image>" but no image is text too. Turns with images still work.
    @Test func imageTextOutsideImageTurnsIsPlainText() throws {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        var options = ChatSession.Options()
        options.systemPrompt = "Never print <image> or <image>."
        let session = try ChatSession(model: model, options: options)
        try session.chat("Hello", parameters: Self.parameters)
        try session.chat("What does <image> mean?", parameters: Self.parameters)
        let image = try ImageDecoder.decodeFile(Fixtures.upstream("small-noslice") + "/input.png")
        let reply = try session.chat("Here: <image>", images: [image], parameters: Self.parameters)
        #expect(reply.timings.encodedImages == 1)
        try session.chat("And <image> again?", parameters: Self.parameters)
        #expect(session.history.count == 8)
        // With images, the placeholder count must match.
        #expect(throws: LlavaError.self) {
            try session.chat("<image> <image>", images: [image], parameters: Self.parameters)
        }
    }

    /// `eval` with more images than the context holds is refused before any image is encoded
    /// (the positions come from the slicing plans), as `chat` does.
    @Test func evalRefusesBeforeEncodingImages() throws {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        var options = ChatSession.Options()
        options.contextLength = 256
        let stages = StageCounter()
        options.onStage = { stage in if case .image = stage { stages.add() } }
        let session = try ChatSession(model: model, options: options)
        let image = try ImageDecoder.decodeFile(Fixtures.upstream("small-noslice") + "/input.png")
        let images = Array(repeating: image, count: 20)
        let tokens = [1] + Array(repeating: -200, count: 20) + [2]
        do {
            try session.eval(tokens: tokens, images: images)
            Issue.record("20 images fit in 256 positions")
        } catch {
            #expect(error.status == .contextFull)
        }
        #expect(stages.count == 0 && session.position == 0)
        // A marker count that is not the image count is refused before encoding as well.
        #expect(throws: LlavaError.self) { try session.eval(tokens: [1, -200, -200], images: [image]) }
        #expect(stages.count == 0)
    }

    /// A 20 MB message is refused from its length alone, before it is tokenized, on both
    /// tokenizer kinds (SentencePiece LLaMA, byte-level BPE Qwen2).
    @Test(arguments: ["small-noslice", "chelsea-qwen2-mask5"])
    func hugeMessageIsRefusedCheaply(_ name: String) throws {
        let model = try LlavaModel(path: Fixtures.model(name))
        #expect(model.tokenizer.inputBytesPerTokenBound != nil)
        let session = try ChatSession(model: model)
        let text = String(repeating: "word ", count: 4_000_000)
        do {
            try session.chat(text, parameters: Self.parameters)
            Issue.record("a 20 MB message fit")
        } catch {
            #expect(error.status == .contextFull)
            #expect(error.message.contains("bytes"))
        }
        #expect(session.position == 0 && session.history.isEmpty)
    }

    /// The bound is a true lower bound on the token count: no text encodes to fewer tokens than
    /// bytes / bound (checked on texts that compress well: runs, long words, special tokens).
    @Test(arguments: ["small-noslice", "chelsea-qwen2-mask5"])
    func bytesPerTokenBoundHolds(_ name: String) throws {
        let model = try LlavaModel(path: Fixtures.model(name))
        let bound = try #require(model.tokenizer.inputBytesPerTokenBound)
        for text in [String(repeating: " ", count: 5000), String(repeating: "=", count: 5000), String(repeating: "the", count: 3000),
                     String(repeating: "</s><|im_end|>", count: 300), String(repeating: "e\u{301}", count: 2000),
                     String(repeating: "\u{1100}\u{1161}\u{11A8}", count: 1000)] {
            let ids = try model.tokenizer.encode(text, addBOS: false, parseSpecial: true)
            #expect(ids.count * bound >= text.utf8.count, "\(name): \(ids.count) tokens for \(text.utf8.count) bytes, bound \(bound)")
        }
    }
}

/// Counts calls from the stage callback (which is @Sendable).
final class StageCounter: @unchecked Sendable {
    private(set) var count = 0
    func add() { count += 1 }
}

/// The KMP stop-string matcher against the obvious quadratic definition, on random streams.
@Suite struct StopStringMatcherTests {
    /// The reference: after every feed, the earliest complete occurrence ends the text; else the
    /// longest held tail that is a proper prefix of some stop string stays held.
    struct Reference {
        let stops: [[Unicode.Scalar]]
        var held: [Unicode.Scalar] = []
        var stopped = false
        mutating func feed(_ text: String) -> String {
            guard !stopped else { return "" }
            guard !stops.isEmpty else { return text }
            held += text.unicodeScalars
            var cut: Int?
            for s in stops {
                for i in 0..<max(0, held.count - s.count + 1) where Array(held[i..<(i + s.count)]) == s {
                    cut = min(cut ?? i, i)
                    break
                }
            }
            if let cut {
                stopped = true
                defer { held = [] }
                return String(String.UnicodeScalarView(held[..<cut]))
            }
            var keep = 0
            for s in stops {
                for n in stride(from: min(s.count - 1, held.count), to: keep, by: -1)
                    where Array(held[(held.count - n)...]) == Array(s[..<n]) {
                    keep = n
                    break
                }
            }
            let out = String(String.UnicodeScalarView(held[..<(held.count - keep)]))
            held.removeFirst(held.count - keep)
            return out
        }
    }

    @Test func matchesTheReferenceOnRandomStreams() {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "b", "c", "é"]
        func word(_ n: Int) -> String { String((0..<n).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }) }
        for _ in 0..<400 {
            let stops = (0..<Int.random(in: 1...3, using: &rng)).map { _ in word(Int.random(in: 1...6, using: &rng)) }
            var matcher = StopStringMatcher(stops)
            var reference = Reference(stops: stops.map { Array($0.unicodeScalars) })
            var a = "", b = ""
            for _ in 0..<30 {
                let piece = word(Int.random(in: 0...4, using: &rng))
                a += matcher.feed(piece)
                b += reference.feed(piece)
                #expect(a == b, "stops \(stops)")
                #expect(matcher.stopped == reference.stopped)
            }
        }
    }

    /// A long stop string that keeps matching partially: 20000 "a"s against "aaa…ab" (5000
    /// scalars). Everything but the last 4999 scalars is released; then "b" completes it.
    @Test func longPartialMatchesAreHeldAndReleased() {
        let stop = String(repeating: "a", count: 4999) + "b"
        var matcher = StopStringMatcher([stop])
        var released = ""
        for _ in 0..<20_000 { released += matcher.feed("a") }
        #expect(released.count == 20_000 - 4999)
        #expect(matcher.feed("b") == "")
        #expect(matcher.stopped)
        var other = StopStringMatcher([stop])
        for _ in 0..<100 { _ = other.feed("a") }
        #expect(other.feed("c").count == 101)
    }
}
