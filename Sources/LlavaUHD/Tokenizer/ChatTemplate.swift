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

/// A conversation template (`ChatTemplateKind`): upstream's two from llava/conversation.py
/// (SPEC §5.1), and llama.cpp's built-in ones for text-only LLMs:
///
/// * `.vicunaV1` (`conv_vicuna_v1`, separator style TWO, separators " " and "</s>"):
///   `{system} USER: <image>\n{question} ASSISTANT: {answer}</s>USER: {question} ASSISTANT:`
/// * `.qwen2ChatML` (`conv_qwen`, templates `qwen_1_5` / `qwen_2`, separator style CHATML):
///   `<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<image>\n{question}<|im_end|>\n<|im_start|>assistant\n`
///
/// The others are written as llama.cpp's `llm_chat_apply_template` writes them (see each case).
///
/// With a vision tower the prompt text is tokenized with `Tokenizer.encodeImagePrompt`
/// (upstream's `tokenizer_image_token`), which puts `imageTokenId` where each `<image>` was;
/// for a text-only LLM `<image>` is plain text.
public struct ChatTemplate: Sendable, Equatable {
    /// Upstream's `DEFAULT_IMAGE_TOKEN` (llava/constants.py).
    public static let imagePlaceholder = "<image>"
    /// Upstream's `IMAGE_TOKEN_INDEX`: the id standing for an image in a prompt's ids.
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
        case .qwen2ChatML, .chatML:
            if !systemPrompt.isEmpty { out = "<|im_start|>system\n" + systemPrompt + "<|im_end|>\n" }
            for m in messages {
                out += (m.role == .user ? "<|im_start|>user\n" : "<|im_start|>assistant\n") + content(m) + "<|im_end|>\n"
            }
            if generate { out += "<|im_start|>assistant\n" }
        case .llama2, .llama2System:
            out = "[INST] "
            if !systemPrompt.isEmpty {
                out += kind == .llama2System ? "<<SYS>>\n" + systemPrompt + "\n<</SYS>>\n\n" : systemPrompt + "\n"
            }
            for (i, m) in messages.enumerated() {
                if m.role == .user {
                    out += (i == 0 ? "" : "[INST] ") + content(m) + " [/INST]"
                } else {
                    out += content(m) + "</s>"
                }
            }
        case .llama3:
            func turn(_ role: String, _ text: String) -> String {
                "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + Self.trimmed(text) + "<|eot_id|>"
            }
            if !systemPrompt.isEmpty { out = turn("system", systemPrompt) }
            for m in messages { out += turn(m.role == .user ? "user" : "assistant", content(m)) }
            if generate { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .mistralV1, .mistralV3:
            let lead = kind == .mistralV1 ? " " : ""
            out = lead + "[INST] "
            if !systemPrompt.isEmpty { out += systemPrompt + "\n\n" }
            for (i, m) in messages.enumerated() {
                if m.role == .user {
                    out += (i == 0 ? "" : lead + "[INST] ") + content(m) + lead + "[/INST]"
                } else {
                    out += " " + (kind == .mistralV3 ? Self.trimmed(content(m)) : content(m)) + "</s>"
                }
            }
        case .mistralV7:
            if !systemPrompt.isEmpty { out = "[SYSTEM_PROMPT] " + systemPrompt + "[/SYSTEM_PROMPT]" }
            for m in messages {
                out += m.role == .user ? "[INST] " + content(m) + "[/INST]" : " " + content(m) + "</s>"
            }
        case .vicuna:
            if !systemPrompt.isEmpty { out = systemPrompt + "\n\n" }
            for m in messages {
                out += m.role == .user ? "USER: " + content(m) + "\n" : "ASSISTANT: " + content(m) + "</s>\n"
            }
            if generate { out += "ASSISTANT:" }
        }
        return out
    }

    /// `text` without leading and trailing ASCII whitespace (llama.cpp's `trim`).
    static func trimmed(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D]
        guard let first = bytes.firstIndex(where: { !space.contains($0) }),
              let last = bytes.lastIndex(where: { !space.contains($0) }) else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    /// The prompt ids of a conversation: with `imagePlaceholders`, `imageTokenId` for each
    /// image; without, the prompt as plain text (special-token text parsed, BOS as the
    /// tokenizer adds it).
    public func encode(_ messages: [ChatMessage], with tokenizer: any Tokenizer,
                       imagePlaceholders: Bool = true) throws(LlavaError) -> [Int32] {
        let text = try prompt(for: messages)
        return imagePlaceholders ? try tokenizer.encodeImagePrompt(text)
            : try tokenizer.encode(text, addBOS: tokenizer.addsBOSByDefault, parseSpecial: true)
    }
}
