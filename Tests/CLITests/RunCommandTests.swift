import LlavaUHD
import TestSupport
import Testing

/// `llavauhd run` and `llavauhd chat` print what `ChatSession.chat` answers in-process (greedy),
/// which the runtime suites check against upstream's generated ids.
@Suite(.serialized) struct RunCommandTests {
    @Test func runPrintsTheLibraryAnswerForAnUpstreamCase() throws {
        let scratch = try TemporaryDirectory()
        let name = "coffee-v2-mask7"   // 600x400: pre-resized to 1024x682, a 3x2 grid (the CLI defaults)
        let manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let question = try #require(manifest["prompt"]?["question"]?.stringValue)
        let imagePath = Fixtures.upstream(name) + "/input.png"
        let result = try CLI.run(["run", "--model", Fixtures.model(name), "--image", imagePath, "--max-new-tokens", "8", question],
                                 scratch: scratch)
        try #require(result.exitCode == 0, "\(result)")

        let model = try LlavaModel(path: Fixtures.model(name))
        let session = try ChatSession(model: model)   // defaults: pre-resize 1024, 9 slices, as the CLI
        let reply = try session.chat(question, images: [try ImageDecoder.decodeFile(imagePath)],
                                     parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 8)))
        #expect(reply.tokens == (try Fixtures.npy(name, "generated_ids").ints))
        #expect(result.stdout == reply.text + "\n")

        // Progress and timings go to standard error.
        let err = lines(result.stderr)
        #expect(err.contains { $0.hasPrefix("model loaded in ") })
        let positions = try #require(manifest["layout"]?["seq_len"]?.intValue)
        let stages = ["image 1/1: slicing and resizing", "image 1/1: vision tower", "image 1/1: VDIM and projector",
                      "prefill: \(positions) positions", "decoding"]
        #expect(err.filter(stages.contains) == stages, "\(result.stderr)")
        #expect(err.contains { $0.hasPrefix("images:  ") && $0.hasSuffix("(1 encoded, 0 from cache)") })
        #expect(err.contains { $0.hasPrefix("prefill: \(positions) positions in ") })
        #expect(err.contains { $0.hasPrefix("decode:  8 tokens in ") && $0.hasSuffix("stopped by max new tokens") })
    }

    @Test func quietPrintsOnlyTheAnswer() throws {
        let scratch = try TemporaryDirectory()
        let model = try CLI.smallModel.get()
        let result = try CLI.run(["run", "--model", model.path, "--max-new-tokens", "4", "--quiet", "Hello"], scratch: scratch)
        try #require(result.exitCode == 0, "\(result)")
        let reply = try ChatSession(model: model).chat("Hello", parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 4)))
        #expect(result.stdout == reply.text + "\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func chatAnswersEveryTurnLikeTheLibrary() throws {
        let scratch = try TemporaryDirectory()
        let model = try CLI.smallModel.get()
        let imagePath = Fixtures.upstream("small-noslice") + "/input.png"
        let input = scratch.path + "/input.txt"
        try writeText(input, """
            /image \(imagePath)
            What animal is this?
            And its colour?
            /reset
            //Hello
            /quit
            Not read.

            """)
        let result = try CLI.run(["chat", "--model", model.path, "--preresize", "0", "--max-new-tokens", "6", "--quiet"],
                                 stdinPath: input, scratch: scratch)
        try #require(result.exitCode == 0, "\(result)")

        var options = ChatSession.Options()
        options.slicing = SlicingOptions(preresizeLongSide: 0)
        let session = try ChatSession(model: model, options: options)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 6))
        let image = try ImageDecoder.decodeFile(imagePath)
        let first = try session.chat("What animal is this?", images: [image], parameters: parameters)
        let second = try session.chat("And its colour?", parameters: parameters)
        #expect(second.reusedPositions > 0)
        session.reset()
        let third = try session.chat("/Hello", parameters: parameters)
        #expect(result.stdout == first.text + "\n" + second.text + "\n" + third.text + "\n")
    }

    /// A real LLM's .gguf file given to `--model`: a text-only model (the load line says so) that
    /// answers like the library, and refuses an image with the model exit code (65).
    @Test(.enabled(if: fileExists(Fixtures.realModel(Fixtures.smolLM2)) || Fixtures.onCI))
    func runAnswersWithATextOnlyGGUF() throws {
        let scratch = try TemporaryDirectory()
        let path = Fixtures.realModel(Fixtures.smolLM2)
        let question = "What is the capital of France?"
        let result = try CLI.run(["run", "--model", path, "--max-new-tokens", "16", question], scratch: scratch)
        try #require(result.exitCode == 0, "\(result)")
        let model = try LlavaModel(path: path)
        #expect(!model.hasVision)
        let reply = try ChatSession(model: model).chat(question, parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 16)))
        #expect(result.stdout == reply.text + "\n" && reply.text == "The capital of France is Paris.")
        #expect(lines(result.stderr).contains { $0.hasPrefix("model loaded in ") && $0.hasSuffix("(text-only LLM: no vision tower, images are refused)") })

        let withImage = try CLI.run(["run", "--model", path, "--image", Fixtures.upstream("small-noslice") + "/input.png", question],
                                    scratch: scratch)
        #expect(withImage.exitCode == 65 && withImage.stderr.contains("llavauhd: unsupported model: ") && withImage.stderr.contains("is a text-only LLM"),
                "\(withImage)")
    }

    /// `chat --save` writes the conversation after each turn; `chat --resume` continues it with
    /// the answer an uninterrupted session gives, and a damaged file exits with code 69.
    @Test func chatSavesAndResumes() throws {
        let scratch = try TemporaryDirectory()
        let model = try CLI.smallModel.get()
        let saved = scratch.path + "/chat.luhds"
        let first = scratch.path + "/first.txt", second = scratch.path + "/second.txt"
        try writeText(first, "Hello there\n")
        try writeText(second, "And then?\n")
        let common = ["chat", "--model", model.path, "--max-new-tokens", "5", "--quiet"]
        let one = try CLI.run(common + ["--save", saved], stdinPath: first, scratch: scratch)
        try #require(one.exitCode == 0, "\(one)")
        let two = try CLI.run(common + ["--resume", saved], stdinPath: second, scratch: scratch)
        try #require(two.exitCode == 0, "\(two)")

        let session = try ChatSession(model: model)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 5))
        let a = try session.chat("Hello there", parameters: parameters)
        let b = try session.chat("And then?", parameters: parameters)
        #expect(one.stdout == a.text + "\n" && two.stdout == b.text + "\n")

        try writeBytes(saved, Array("not a session".utf8))
        let bad = try CLI.run(common + ["--resume", saved], stdinPath: second, scratch: scratch)
        #expect(bad.exitCode == 69 && bad.stderr.contains("bad session file"))
    }
}
