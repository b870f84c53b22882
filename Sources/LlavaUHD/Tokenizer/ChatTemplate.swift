/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        case user, assistant
    }

    public var role: Role
    public var text: String
    /// Images that go with this message: each puts `"<image>\n"` before the text, as the
    /// upstream evaluation scripts write `DEFAULT_IMAGE_TOKEN + "\n" + question`, unless
    /// `imagesInText`.
    public var imageCount: Int
    /// Whether the images go where `text` says `<image>` (exactly one placeholder per image)
    /// instead of before the text. Everywhere else (the system prompt, answers, a message
    /// without images or with `imagesInText` false) `<image>` is plain text.
    public var imagesInText: Bool

    public init(role: Role, text: String, imageCount: Int = 0, imagesInText: Bool = false) {
        self.role = role
        self.text = text
        self.imageCount = imageCount
        self.imagesInText = imagesInText
    }

    public static func user(_ text: String, images: Int = 0, imagesInText: Bool = false) -> ChatMessage {
        ChatMessage(role: .user, text: text, imageCount: images, imagesInText: imagesInText)
    }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: .assistant, text: text) }
}

/// A conversation template (`ChatTemplateKind`): upstream's two from llava/conversation.py
/// (docs/MODEL.md §5.1), and llama.cpp's built-in ones for text-only LLMs:
///
/// * `.vicunaV1` (`conv_vicuna_v1`, separator style TWO, separators " " and "</s>"):
///   `{system} USER: <image>\n{question} ASSISTANT: {answer}</s>USER: {question} ASSISTANT:`
/// * `.qwen2ChatML` (`conv_qwen`, templates `qwen_1_5` / `qwen_2`, separator style CHATML):
///   `<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<image>\n{question}<|im_end|>\n<|im_start|>assistant\n`
///
/// The others are written as llama.cpp's `llm_chat_apply_template` writes them (see each case).
///
/// The prompt is tokenized as upstream's `tokenizer_image_token` does (`Tokenizer.encodeImagePrompt`):
/// the text between images is encoded chunk by chunk, with `imageTokenId` between chunks. The
/// chunks are cut only where a user message put an image, so `<image>` written in the system
/// prompt, in an answer or in a message without images is text, not an image marker (upstream
/// would split there too and then fail on a marker without an image). A conversation without
/// images (always, for a text-only LLM) is one chunk, encoded as plain text.
public struct ChatTemplate: Sendable, Equatable {
    /// Upstream's `DEFAULT_IMAGE_TOKEN` (llava/constants.py).
    public static let imagePlaceholder = "<image>"
    /// Upstream's `IMAGE_TOKEN_INDEX`: the id standing for an image in a prompt's ids. The C
    /// header's `LUHD_IMAGE_TOKEN` mirrors it (checked by `HeaderMirrorTests`).
    public static let imageTokenId: Int32 = -200

    public let kind: ChatTemplateKind
    /// The system prompt (for ChatML without the `<|im_start|>system\n` framing; empty leaves
    /// the system turn out, as upstream does for an empty system).
    public var systemPrompt: String

    public init(kind: ChatTemplateKind, systemPrompt: String? = nil) {
        self.kind = kind
        self.systemPrompt = systemPrompt ?? Self.defaultSystemPrompt(kind)
    }

    /// The template's own system prompt.
    public static func defaultSystemPrompt(_ kind: ChatTemplateKind) -> String {
        switch kind {
        case .vicunaV1:
            return "A chat between a curious user and an artificial intelligence assistant. "
                + "The assistant gives helpful, detailed, and polite answers to the user's questions."
        case .qwen2ChatML:
            return "You are a helpful assistant."
        case .chatML, .llama2, .llama2System, .llama3, .mistralV1, .mistralV3, .mistralV7, .vicuna:
            return ""   // llama.cpp's built-in templates add none
        }
    }

    /// The prompt for a conversation as one string, with `<image>` where each image goes
    /// (upstream's prompt string; see `promptChunks(for:)` for where the images really are).
    public func prompt(for messages: [ChatMessage]) throws(LlavaError) -> String {
        try promptChunks(for: messages).joined(separator: Self.imagePlaceholder)
    }

    /// The prompt for a conversation cut where its images go: image i comes between chunk i and
    /// chunk i + 1, so there are one more chunks than images. Messages alternate user /
    /// assistant, starting with the user; after a final user message comes the assistant's
    /// generation prompt ("ASSISTANT:" / "<|im_start|>assistant\n"). Throws `.invalidArgument`
    /// for an empty or out-of-order conversation, a negative image count, images on an
    /// assistant message, or `imagesInText` with a placeholder count that is not the image count.
    public func promptChunks(for messages: [ChatMessage]) throws(LlavaError) -> [String] {
        guard !messages.isEmpty else { throw LlavaError(.invalidArgument, "a conversation needs at least one message") }
        for (i, m) in messages.enumerated() {
            let expected: ChatMessage.Role = i % 2 == 0 ? .user : .assistant
            guard m.role == expected else {
                throw LlavaError(.invalidArgument, "message \(i) should be from the \(expected == .user ? "user" : "assistant"): turns alternate, starting with the user")
            }
            guard m.imageCount >= 0 else { throw LlavaError(.invalidArgument, "message \(i) has a negative image count") }
            guard m.role == .user || m.imageCount == 0 else {
                throw LlavaError(.invalidArgument, "message \(i) is from the assistant and cannot carry images")
            }
            if m.imagesInText, Self.placeholderRanges(in: Array(m.text.utf8)).count - 1 != m.imageCount {
                throw LlavaError(.invalidArgument, "message \(i) puts its \(m.imageCount) image(s) at its <image> placeholders, but it has \(Self.placeholderRanges(in: Array(m.text.utf8)).count - 1)")
            }
        }
        let generate = messages.last?.role == .user
        var chunks = [""]
        func text(_ s: String) { chunks[chunks.count - 1] += s }
        // A message's text pieces, an image between consecutive pieces. `trimmed` (llama.cpp's
        // `trim` of the whole content, for LLaMA-3 and Mistral v3) strips the first piece's
        // leading and the last piece's trailing whitespace: an image is never whitespace.
        func content(_ m: ChatMessage, trimmed: Bool = false) {
            var pieces: [String]
            if m.imagesInText {
                let bytes = Array(m.text.utf8)
                pieces = Self.placeholderRanges(in: bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
            } else {
                pieces = [""] + Array(repeating: "\n", count: m.imageCount)
                pieces[pieces.count - 1] += m.text
            }
            if trimmed {
                pieces[0] = Self.trimmed(pieces[0], trailing: pieces.count == 1)
                pieces[pieces.count - 1] = Self.trimmed(pieces[pieces.count - 1], leading: pieces.count == 1)
            }
            for (i, piece) in pieces.enumerated() {
                if i > 0 { chunks.append("") }
                text(piece)
            }
        }
        switch kind {
        case .vicunaV1:
            // Separator style TWO: message i is followed by " " (user) or "</s>" (assistant).
            text(systemPrompt + " ")
            for m in messages {
                text(m.role == .user ? "USER: " : "ASSISTANT: ")
                content(m)
                text(m.role == .user ? " " : "</s>")
            }
            if generate { text("ASSISTANT:") }
        case .qwen2ChatML, .chatML:
            if !systemPrompt.isEmpty { text("<|im_start|>system\n" + systemPrompt + "<|im_end|>\n") }
            for m in messages {
                text(m.role == .user ? "<|im_start|>user\n" : "<|im_start|>assistant\n")
                content(m)
                text("<|im_end|>\n")
            }
            if generate { text("<|im_start|>assistant\n") }
        case .llama2, .llama2System:
            text("[INST] ")
            if !systemPrompt.isEmpty {
                text(kind == .llama2System ? "<<SYS>>\n" + systemPrompt + "\n<</SYS>>\n\n" : systemPrompt + "\n")
            }
            for (i, m) in messages.enumerated() {
                if m.role == .user {
                    if i > 0 { text("[INST] ") }
                    content(m)
                    text(" [/INST]")
                } else {
                    content(m)
                    text("</s>")
                }
            }
        case .llama3:
            func turn(_ role: String) { text("<|start_header_id|>" + role + "<|end_header_id|>\n\n") }
            if !systemPrompt.isEmpty {
                turn("system")
                text(Self.trimmed(systemPrompt) + "<|eot_id|>")
            }
            for m in messages {
                turn(m.role == .user ? "user" : "assistant")
                content(m, trimmed: true)
                text("<|eot_id|>")
            }
            if generate { turn("assistant") }
        case .mistralV1, .mistralV3:
            let lead = kind == .mistralV1 ? " " : ""
            text(lead + "[INST] ")
            if !systemPrompt.isEmpty { text(systemPrompt + "\n\n") }
            for (i, m) in messages.enumerated() {
                if m.role == .user {
                    if i > 0 { text(lead + "[INST] ") }
                    content(m)
                    text(lead + "[/INST]")
                } else {
                    text(" ")
                    content(m, trimmed: kind == .mistralV3)
                    text("</s>")
                }
            }
        case .mistralV7:
            if !systemPrompt.isEmpty { text("[SYSTEM_PROMPT] " + systemPrompt + "[/SYSTEM_PROMPT]") }
            for m in messages {
                text(m.role == .user ? "[INST] " : " ")
                content(m)
                text(m.role == .user ? "[/INST]" : "</s>")
            }
        case .vicuna:
            if !systemPrompt.isEmpty { text(systemPrompt + "\n\n") }
            for m in messages {
                text(m.role == .user ? "USER: " : "ASSISTANT: ")
                content(m)
                text(m.role == .user ? "\n" : "</s>\n")
            }
            if generate { text("ASSISTANT:") }
        }
        return chunks
    }

    /// The prompt ids of a conversation, with `imageTokenId` for each image (and nowhere else).
    public func encode(_ messages: [ChatMessage], with tokenizer: any Tokenizer) throws(LlavaError) -> [Int32] {
        try tokenizer.encodeImagePrompt(chunks: try promptChunks(for: messages).map { Array($0.utf8) })
    }

    /// The byte ranges of `text` between occurrences of `<image>` (Python's `str.split`: n
    /// placeholders give n + 1 ranges, possibly empty). Linear in the text's length.
    public static func placeholderRanges(in text: [UInt8]) -> [Range<Int>] {
        let separator = Array(imagePlaceholder.utf8)
        var ranges: [Range<Int>] = []
        var start = 0, i = 0
        while i + separator.count <= text.count {
            if text[i] == separator[0] && text[i..<(i + separator.count)].elementsEqual(separator) {
                ranges.append(start..<i)
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        ranges.append(start..<text.count)
        return ranges
    }

    /// `text` without leading and/or trailing ASCII whitespace (llama.cpp's `trim` does both).
    static func trimmed(_ text: String, leading: Bool = true, trailing: Bool = true) -> String {
        let bytes = Array(text.utf8)
        let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D]
        let first = leading ? bytes.firstIndex(where: { !space.contains($0) }) ?? bytes.count : 0
        let end = trailing ? (bytes.lastIndex(where: { !space.contains($0) }).map { $0 + 1 } ?? 0) : bytes.count
        guard first < end else { return "" }
        return String(decoding: bytes[first..<end], as: UTF8.self)
    }
}
