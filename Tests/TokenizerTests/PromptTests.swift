import LlavaUHD
import TestSupport
import Testing

/// Prompts as upstream builds them: the five upstream cases (ids saved by the upstream PyTorch
/// run, `input_ids.npy`), and chat_golden.json (scripts/fixtures/make_chat_golden.py: upstream's
/// conversation.py and `tokenizer_image_token` with transformers 4.37.2 tokenizers).
@Suite struct PromptTests {
    static func kind(_ template: String) throws -> ChatTemplateKind {
        switch template {
        case "vicuna_v1": return .vicunaV1
        case "qwen_2": return .qwen2ChatML
        default: throw LlavaError(.invalidArgument, "unknown template \(template)")
        }
    }

    @Test(arguments: Fixtures.upstreamCases)
    func upstreamCasePrompt(_ name: String) throws {
        let manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let prompt = try #require(manifest["prompt"])
        let text = try #require(prompt["text"]?.stringValue)
        let question = try #require(prompt["question"]?.stringValue)
        let kind = try Self.kind(try #require(prompt["template"]?.stringValue))
        let tokenizer = try Tokenizers.load(directory: Fixtures.model(name))

        // The template renders the same prompt text from the question.
        #expect(try ChatTemplate(kind: kind).prompt(for: [.user(question, images: 1)]) == text)

        // Chunks, and each chunk as `tokenizer(chunk).input_ids`.
        let chunks = try #require(prompt["chunks"]?.arrayValue).compactMap(\.stringValue)
        let chunkIds = try #require(prompt["chunk_ids_with_bos"]?.arrayValue)
        #expect(chunks.count == 2 && chunkIds.count == 2)
        for (chunk, ids) in zip(chunks, chunkIds) {
            let expected = (ids.arrayValue ?? []).compactMap { $0.intValue.map(Int32.init) }
            #expect(try tokenizer.encode(chunk, addBOS: tokenizer.addsBOSByDefault, parseSpecial: true) == expected)
        }

        // The whole prompt with −200 for the image, against the ids upstream fed the model.
        let upstreamIds = try Fixtures.npy(name, "input_ids").ints.map(Int32.init)
        let ids = try tokenizer.encodeImagePrompt(text)
        #expect(ids == upstreamIds)
        #expect(ids.filter { $0 == ChatTemplate.imageTokenId }.count == 1)
    }

    struct Tokenizers4372 {
        let legacy: any Tokenizer
        let nonLegacy: any Tokenizer
        let qwenSlow: any Tokenizer
        let qwenFast: any Tokenizer

        init() throws {
            legacy = try SharedTokenizers.mistral()
            nonLegacy = try SentencePieceTokenizer(modelFile: GoldenSet.mistralModel,
                                                   configDirectory: Fixtures.root + "/tokenizer/llama_nonlegacy")
            let qwenDir = Fixtures.model("chelsea-qwen2-mask5")
            qwenSlow = try ByteLevelBPETokenizer(vocabJSON: qwenDir + "/vocab.json", merges: qwenDir + "/merges.txt",
                                                 configDirectory: qwenDir)
            qwenFast = try ByteLevelBPETokenizer(tokenizerJSON: qwenDir + "/tokenizer.json", configDirectory: qwenDir)
        }

        func named(_ name: String) throws -> any Tokenizer {
            switch name {
            case "llama-legacy": return legacy
            case "llama-nonlegacy": return nonLegacy
            case "qwen2-slow": return qwenSlow
            case "qwen2-fast": return qwenFast
            default: throw LlavaError(.invalidArgument, "unknown tokenizer \(name)")
            }
        }
    }

    /// The `count` cases under `key` in Tests/Fixtures/tokenizer/chat_golden.json.
    static func chatGolden(_ key: String, count: Int) throws -> [JSONValue] {
        let golden = try Fixtures.json(Fixtures.root + "/tokenizer/chat_golden.json")
        let cases = try #require(golden[key]?.arrayValue)
        #expect(cases.count == count)
        return cases
    }

    /// A golden case's expected ids.
    static func expectedIds(_ c: JSONValue) throws -> [Int32] {
        try #require(c["ids"]?.arrayValue).compactMap { $0.intValue.map(Int32.init) }
    }

    @Test func chatTemplatesMatchUpstream() throws {
        let tokenizers = try Tokenizers4372()
        for c in try Self.chatGolden("conversations", count: 50) {
            let label = "\(c["name"]?.stringValue ?? "?") [\(c["branch"]?.stringValue ?? "?"), \(c["tokenizer"]?.stringValue ?? "?")]"
            let kind = try Self.kind(try #require(c["template"]?.stringValue))
            let system = c["system"]?.stringValue
            let messages = try #require(c["messages"]?.arrayValue).map { m in
                ChatMessage(role: m["role"]?.stringValue == "user" ? .user : .assistant,
                            text: m["text"]?.stringValue ?? "", imageCount: m["images"]?.intValue ?? 0)
            }
            let template = ChatTemplate(kind: kind, systemPrompt: system)
            let prompt = try template.prompt(for: messages)
            #expect(prompt == c["prompt"]?.stringValue, "\(label): prompt")
            let tokenizer = try tokenizers.named(try #require(c["tokenizer"]?.stringValue))
            let expected = try Self.expectedIds(c)
            let ids = try template.encode(messages, with: tokenizer)
            #expect(ids == expected, "\(label): ids")
        }
    }

    /// `tokenizer(text, add_special_tokens=...)` with special-token text in it.
    @Test func specialTokenTextMatchesTransformers() throws {
        let tokenizers = try Tokenizers4372()
        for c in try Self.chatGolden("encodings", count: 112) {
            let name = try #require(c["tokenizer"]?.stringValue)
            let text = try #require(c["text"]?.stringValue)
            let special = c["add_special_tokens"]?.boolValue == true
            let tokenizer = try tokenizers.named(name)
            let expected = try Self.expectedIds(c)
            let ids = try tokenizer.encode(text, addBOS: special && tokenizer.addsBOSByDefault, parseSpecial: true)
            #expect(ids == expected, "\(name) \"\(escaped(text))\" add_special_tokens=\(special)")
        }
    }

    @Test func templateRejectsMalformedConversations() {
        let t = ChatTemplate(kind: .vicunaV1)
        for messages in [[], [ChatMessage.assistant("hi")], [.user("a"), .user("b")],
                         [ChatMessage(role: .user, text: "x", imageCount: -1)],
                         [.user("a"), ChatMessage(role: .assistant, text: "b", imageCount: 1)]] {
            #expect(throws: LlavaError.self) { try t.prompt(for: messages) }
        }
    }
}
