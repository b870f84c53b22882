// libFuzzer target `prompt`: chat text with <image> markers, through what a chat turn does with
// it before the model runs: each chat template renders a fuzzed system prompt, a user message
// (with no image and with one), and a two-turn conversation whose assistant answer is fuzzed
// text too; the result is tokenized with image placeholders (Tokenizer.encodeImagePrompt) and
// the ids are decoded again, whole and streaming. One input: the system prompt, the line
// "#~user~#", then the user text. Both tokenizer kinds: the test models' SentencePiece
// tokenizer.model (Vicuna template) and the Qwen2 BPE tokenizer (ChatML). Seeded with the
// texts of Tests/Fixtures/tokenizer's golden sets. The user text is also read as a Jinja
// chat_template (ChatTemplateKind.detect), and every built-in template (the text-only LLMs'
// too) renders the conversations.
@testable import LlavaUHD

private let tokenizers: [(any Tokenizer, ChatTemplateKind)] = {
    do {
        let spm = try SentencePieceTokenizer(modelFile: fuzzFixture("LLAVAUHD_FUZZ_SPM_MODEL"))
        let bpe = try Tokenizers.load(directory: fuzzFixture("LLAVAUHD_FUZZ_QWEN2_TOKENIZER"))
        return [(spm, .vicunaV1), (bpe, .qwen2ChatML)]
    } catch {
        fatalError("prompt: the fixed tokenizers do not load: \(error)")
    }
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitPrompt(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    fuzzInitialize { _ = tokenizers }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPrompt(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let (system, user) = fuzzSplit(fuzzBytes(data, size), separator: "\n#~user~#\n")
    for (tokenizer, kind) in tokenizers {
        // The raw text with its markers, as luhd_model_tokenize with image placeholders sees it.
        if let ids = try? tokenizer.encodeImagePrompt(utf8: Array(user)) { roundTrip(tokenizer, ids) }
        guard let systemText = String(validating: system, as: UTF8.self),
              let userText = String(validating: user, as: UTF8.self) else { continue }
        let template = ChatTemplate(kind: kind, systemPrompt: systemText)
        let conversations: [[ChatMessage]] = [
            [.user(userText)], [.user(userText, images: 1)],
            [.user("Describe it.", images: 1), .assistant(userText), .user(systemText)],
        ]
        for messages in conversations {
            if let ids = try? template.encode(messages, with: tokenizer) { roundTrip(tokenizer, ids) }
        }
    }
    if let userText = String(validating: user, as: UTF8.self), let systemText = String(validating: system, as: UTF8.self) {
        _ = ChatTemplateKind.detect(template: userText)
        for kind in ChatTemplateKind.allCases {
            _ = try? ChatTemplate(kind: kind, systemPrompt: systemText)
                .promptChunks(for: [.user(" \(userText) ", images: 1), .assistant(userText), .user(userText)])
        }
    }
    return 0
}

/// Decodes `ids` (image placeholders left out) whole and one id at a time.
private func roundTrip(_ tokenizer: any Tokenizer, _ ids: [Int32]) {
    let text = ids.filter { $0 >= 0 }
    _ = try? tokenizer.decode(text)
    var stream = StreamingDetokenizer(tokenizer: tokenizer)
    for id in text { _ = try? stream.append(id) }
    _ = stream.finish()
}
