/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        case user, assistant
    }

    public var role: Role
    public var text: String
    /// Images that go with this message: each puts `"<image>\n"` before the text, as the
    /// upstream evaluation scripts write `DEFAULT_IMAGE_TOKEN + "\n" + question`.
    public var imageCount: Int

    public init(role: Role, text: String, imageCount: Int = 0) {
        self.role = role
        self.text = text
        self.imageCount = imageCount
    }

    public static func user(_ text: String, images: Int = 0) -> ChatMessage { ChatMessage(role: .user, text: text, imageCount: images) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: .assistant, text: text) }
}

/// The conversation templates of upstream's llava/conversation.py (docs/MODEL.md §5.1):
///
/// * `.vicunaV1` (`conv_vicuna_v1`, separator style TWO, separators " " and "</s>"):
///   `{system} USER: <image>\n{question} ASSISTANT: {answer}</s>USER: {question} ASSISTANT:`
/// * `.qwen2ChatML` (`conv_qwen`, templates `qwen_1_5` / `qwen_2`, separator style CHATML):
///   `<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<image>\n{question}<|im_end|>\n<|im_start|>assistant\n`
///
/// The prompt text is tokenized with `Tokenizer.encodeImagePrompt` (upstream's
/// `tokenizer_image_token`), which puts `imageTokenId` where each `<image>` was.
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

    /// The prompt for a conversation. Messages alternate user / assistant, starting with the
    /// user; after a final user message comes the assistant's generation prompt
    /// ("ASSISTANT:" / "<|im_start|>assistant\n"). Throws `.invalidArgument` for an empty or
    /// out-of-order conversation, a negative image count or images on an assistant message.
    public func prompt(for messages: [ChatMessage]) throws(LlavaError) -> String {
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
        }
        let generate = messages.last?.role == .user
        func content(_ m: ChatMessage) -> String {
            String(repeating: Self.imagePlaceholder + "\n", count: m.imageCount) + m.text
        }
        var out = ""
        switch kind {
        case .vicunaV1:
            // Separator style TWO: message i is followed by " " (user) or "</s>" (assistant).
            out = systemPrompt + " "
            for m in messages {
                if m.role == .user {
                    out += "USER: " + content(m) + " "
                } else {
                    out += "ASSISTANT: " + content(m) + "</s>"
                }
            }
            if generate { out += "ASSISTANT:" }
        case .qwen2ChatML:
            if !systemPrompt.isEmpty { out = "<|im_start|>system\n" + systemPrompt + "<|im_end|>\n" }
            for m in messages {
                out += (m.role == .user ? "<|im_start|>user\n" : "<|im_start|>assistant\n") + content(m) + "<|im_end|>\n"
            }
            if generate { out += "<|im_start|>assistant\n" }
        }
        return out
    }

    /// The prompt ids of a conversation, with `imageTokenId` for each image.
    public func encode(_ messages: [ChatMessage], with tokenizer: any Tokenizer) throws(LlavaError) -> [Int32] {
        try tokenizer.encodeImagePrompt(try prompt(for: messages))
    }
}
