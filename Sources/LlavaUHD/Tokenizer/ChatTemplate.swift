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

/// The conversation templates of upstream's llava/conversation.py (docs/MODEL.md §5.1):
///
/// * `.vicunaV1` (`conv_vicuna_v1`, separator style TWO, separators " " and "</s>"):
///   `{system} USER: <image>\n{question} ASSISTANT: {answer}</s>USER: {question} ASSISTANT:`
/// * `.qwen2ChatML` (`conv_qwen`, templates `qwen_1_5` / `qwen_2`, separator style CHATML):
///   `<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<image>\n{question}<|im_end|>\n<|im_start|>assistant\n`
///
/// The prompt is tokenized as upstream's `tokenizer_image_token` does (`Tokenizer.encodeImagePrompt`):
/// the text between images is encoded chunk by chunk, with `imageTokenId` between chunks. The
/// chunks are cut only where a user message put an image, so `<image>` written in the system
/// prompt, in an answer or in a message without images is text, not an image marker (upstream
/// would split there too and then fail on a marker without an image).
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
        func content(_ m: ChatMessage) {
            if m.imagesInText {
                let bytes = Array(m.text.utf8)
                for (i, range) in Self.placeholderRanges(in: bytes).enumerated() {
                    if i > 0 { chunks.append("") }
                    text(String(decoding: bytes[range], as: UTF8.self))
                }
            } else {
                for _ in 0..<m.imageCount {
                    chunks.append("")
                    text("\n")
                }
                text(m.text)
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
        case .qwen2ChatML:
            if !systemPrompt.isEmpty { text("<|im_start|>system\n" + systemPrompt + "<|im_end|>\n") }
            for m in messages {
                text(m.role == .user ? "<|im_start|>user\n" : "<|im_start|>assistant\n")
                content(m)
                text("<|im_end|>\n")
            }
            if generate { text("<|im_start|>assistant\n") }
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
}
