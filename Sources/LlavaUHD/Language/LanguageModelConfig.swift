/// The LLM's architecture and sizes, read from config.json (docs/MODEL.md §6).
public struct LanguageModelConfig: Sendable, Equatable {
    public enum Architecture: String, Sendable, Equatable {
        /// LLaMA-2 / Vicuna v1.5 (`llava_llama`).
        case llama
        /// Qwen2 (`llava_qwen`): q/k/v biases, grouped-query attention.
        case qwen2
    }

    public var architecture: Architecture
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// BOS id, nil when the tokenizer adds none (Qwen2).
    public var bosTokenId: Int?
    /// Ids that end generation.
    public var eosTokenIds: [Int]

    public init(architecture: Architecture, hiddenSize: Int, intermediateSize: Int, layerCount: Int,
                headCount: Int, kvHeadCount: Int, vocabSize: Int, rmsNormEps: Float, ropeTheta: Float,
                maxPositionEmbeddings: Int, tieWordEmbeddings: Bool, bosTokenId: Int?, eosTokenIds: [Int]) {
        self.architecture = architecture
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.vocabSize = vocabSize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
    }

    /// Width of one attention head (hidden / heads; 128 for both 7B models).
    public var headDim: Int { hiddenSize / headCount }
}

/// How image tokens are laid out in the LLM input (docs/MODEL.md §5.2, §5.3). The raw values are the
/// names the C API (`luhd_model_get_properties`) and the CLI print.
public enum ImageTokenLayout: String, Sendable, Equatable, CaseIterable {
    /// old-vicuna-7b branch: slices stitched into one grid with a newline after every token row,
    /// a separator, then the overview.
    case stitchedGrid = "stitched_grid"
    /// LLaVA-UHD-v2 branch: each slice's 144 tokens followed by its separator, then the overview.
    case perSlice = "per_slice"
}

/// The conversation template around the user's question (docs/MODEL.md §5.1 for the two LLaVA-UHD
/// ones; the others are llama.cpp's built-in templates of the same names, for text-only LLMs).
/// The raw value is the name the C API, the CLI and Python use.
public enum ChatTemplateKind: String, Sendable, Equatable, CaseIterable {
    /// `conv_vicuna_v1`: "… USER: <image>\n{question} ASSISTANT:".
    case vicunaV1 = "vicuna_v1"
    /// Qwen2 ChatML (`qwen_2`), with Qwen2's default system prompt.
    case qwen2ChatML = "qwen2_chatml"
    /// ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n`, no default system prompt.
    case chatML = "chatml"
    /// LLaMA-2 `[INST] … [/INST]`, a system prompt joined to the first turn without `<<SYS>>`.
    case llama2 = "llama2"
    /// LLaMA-2 with the system prompt in `<<SYS>>\n…\n<</SYS>>\n\n`.
    case llama2System = "llama2-sys"
    /// LLaMA-3 `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>` (content trimmed).
    case llama3 = "llama3"
    /// Mistral v1: ` [INST] {user} [/INST] {answer}</s>`.
    case mistralV1 = "mistral-v1"
    /// Mistral v3: `[INST] {user}[/INST] {answer}</s>` (answers trimmed).
    case mistralV3 = "mistral-v3"
    /// Mistral v7: `[SYSTEM_PROMPT] …[/SYSTEM_PROMPT][INST] {user}[/INST] {answer}</s>`.
    case mistralV7 = "mistral-v7"
    /// Vicuna 1.1 (llama.cpp's `vicuna`): `{system}\n\nUSER: {user}\nASSISTANT: {answer}</s>\n`.
    case vicuna = "vicuna"

    /// The template called `name` (its raw value), or `.invalidArgument` naming `option` and the
    /// valid names: how the CLI's `--template` and the C and Python `chat_template` parameter
    /// read a caller's choice.
    package static func named(_ name: String, option: String) throws(LlavaError) -> ChatTemplateKind {
        guard let kind = ChatTemplateKind(rawValue: name) else {
            throw LlavaError(.invalidArgument, "\(option) '\(name)' is not one of "
                             + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return kind
    }

    /// The built-in family a Jinja `chat_template` (GGUF `tokenizer.chat_template` or
    /// tokenizer_config.json `chat_template`) belongs to, recognised by the substrings llama.cpp's
    /// template detection looks for, in its order; nil when none matches (pass the template
    /// explicitly then). A template that is exactly a family's name is that family.
    package static func detect(template: String) -> ChatTemplateKind? {
        if let named = ChatTemplateKind(rawValue: template) { return named }
        func has(_ s: String) -> Bool { UTF8Text.count(s, in: template) > 0 }
        if has("<|im_start|>") {
            // Phi-4 and SmolVLM use the ChatML markers with other framing.
            return has("<|im_sep|>") || has("<end_of_utterance>") ? nil : .chatML
        }
        if template.hasPrefix("mistral") || has("[INST]") {
            if has("[SYSTEM_PROMPT]") { return .mistralV7 }
            if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
                if has(" [INST]") { return .mistralV1 }
                return has("\"[INST]\"") ? nil : .mistralV3   // v3-tekken is not built in
            }
            // LLaMA-2 variants that put BOS inside the history or strip messages are not built in.
            if has("content.strip()") || has("bos_token + '[INST]") { return nil }
            return has("<<SYS>>") ? .llama2System : .llama2
        }
        // Families llama.cpp checks before Vicuna and LLaMA-3 that are not built in here
        // (Phi-3, ChatGLM, Falcon-3/GLM-Edge, Zephyr, Monarch, Gemma, Orion, OpenChat).
        let others = [["<|assistant|>", "<|end|>"], ["[gMASK]"], ["<|assistant|>", "<|user|>"], ["<|user|>", "<|endoftext|>"],
                      ["bos_token + message['role']"], ["<start_of_turn>"], ["'\\n\\nAssistant: ' + eos_token"], ["GPT4 Correct "]]
        if others.contains(where: { $0.allSatisfy { has($0) } }) { return nil }
        if has("USER: ") && has("ASSISTANT: ") { return has("SYSTEM: ") ? nil : .vicuna }
        // DeepSeek Coder and Command-R come before LLaMA-3 in llama.cpp's order.
        if (has("### Instruction:") && has("<|EOT|>")) || (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) { return nil }
        if has("<|start_header_id|>") && has("<|end_header_id|>") { return .llama3 }
        return nil
    }
}
