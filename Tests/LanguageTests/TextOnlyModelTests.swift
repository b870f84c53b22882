import Foundation
import LlavaUHD
import Testing
import TestSupport

/// Text-only LLMs as models (`LlavaModel.vision == nil`), built from the Qwen2 upstream tiny
/// model's LLM: a directory holding only a GGUF LLM and tokenizer files, and a plain
/// `Qwen2ForCausalLM` directory (config.json `model_type` `qwen2`, safetensors). The reference
/// is the LLaVA-UHD model itself, whose LLM is checked against upstream elsewhere: same weights
/// and template, so the same logits and the same greedy answer to a text-only question. Every
/// image call on a text-only model is `.unsupported`, a model without a recognised template
/// refuses `chat` until one is given.
@Suite struct TextOnlyModelTests {
    static let source = GGUFModelDirectoryTests.source

    static func linkTokenizer(into dir: String) throws {
        for name in ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"] {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: source + "/" + name)
        }
    }

    static func expectUnsupported(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation, performing: body, throws: { ($0 as? LlavaError)?.status == .unsupported })
    }

    static func answer(_ model: LlavaModel) throws -> ChatReply {
        try ChatSession(model: model).chat("Name three colours.", parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 8)))
    }

    @Test(.enabled(if: fileExists(TextOnlyModelTests.source + "/model.safetensors")))
    func ggufDirectoryAndPlainDirectory() throws {
        let fm = FileManager.default
        let root = NSTemporaryDirectory() + "luhd-text-only-\(UInt64.random(in: 0..<UInt64.max))"
        defer { try? fm.removeItem(atPath: root) }
        let llava = try LlavaModel(path: Self.source, options: .init(threads: 2))
        #expect(llava.vision != nil && llava.chatTemplate == .qwen2ChatML)

        // A GGUF LLM and tokenizer files, no config.json.
        let ggufDir = root + "/gguf"
        try fm.createDirectory(atPath: ggufDir, withIntermediateDirectories: true)
        try GGUFModelDirectoryTests.writeGGUF(llava.weights, config: llava.languageConfig, to: ggufDir + "/llm.gguf")
        try Self.linkTokenizer(into: ggufDir)
        let gguf = try LlavaModel(path: ggufDir, options: .init(threads: 2))
        #expect(gguf.vision == nil && gguf.weights.count == 0 && gguf.tensorCount == gguf.languageGGUF?.tensors.count)
        #expect(gguf.chatTemplate == nil)   // the tiny model's tokenizer_config.json has no chat_template
        let prompt = try gguf.tokenizer.encode("A tiny model answers", addBOS: false, parseSpecial: true).map(Int.init)
        let a = try llava.language.eval(tokens: prompt, cache: KVCache(config: llava.languageConfig, capacity: 32),
                                        logits: .all, context: llava.computeContext())
        let b = try gguf.language.eval(tokens: prompt, cache: KVCache(config: gguf.languageConfig, capacity: 32),
                                       logits: .all, context: gguf.computeContext())
        #expect(a == b)
        Self.expectUnsupported { _ = try Self.answer(gguf) }

        // Image calls are refused with a clear status.
        let image = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 128, count: 48))
        let session = try ChatSession(model: gguf)
        Self.expectUnsupported { _ = try gguf.plan(for: image) }
        Self.expectUnsupported { _ = try gguf.embed(image, context: gguf.computeContext()) }
        Self.expectUnsupported { try session.eval(tokens: [1, MultimodalInput.imageMarker, 2]) }
        Self.expectUnsupported { try session.eval(tokens: [1, 2], images: [image]) }
        #expect(session.position == 0)

        // A plain Qwen2ForCausalLM directory: config.json without the LLaVA keys.
        let plainDir = root + "/plain"
        try fm.createDirectory(atPath: plainDir, withIntermediateDirectories: true)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.source + "/config.json"))) as! [String: Any]
        for key in config.keys where key.hasPrefix("mm_") || ["model_mode", "feature_scale_mask", "image_aspect_ratio"].contains(key) {
            config.removeValue(forKey: key)
        }
        config["model_type"] = "qwen2"
        config["architectures"] = ["Qwen2ForCausalLM"]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: plainDir + "/config.json"))
        try fm.createSymbolicLink(atPath: plainDir + "/model.safetensors", withDestinationPath: Self.source + "/model.safetensors")
        try Self.linkTokenizer(into: plainDir)
        let plain = try LlavaModel(path: plainDir, options: .init(threads: 2, chatTemplate: .qwen2ChatML))
        #expect(plain.vision == nil && plain.languageConfig == llava.languageConfig)
        let expected = try Self.answer(llava)
        let got = try Self.answer(plain)
        #expect(got.tokens == expected.tokens && got.text == expected.text)
        // "<image>" is plain text without a vision tower.
        let literal = try ChatSession(model: plain).chat("<image>", parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 1)))
        #expect(literal.promptPositions > 0)
        print("text-only: \(expected.tokens.count) greedy tokens equal to the LLaVA model's: \"\(got.text)\"")
    }
}
