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

/// The conversation template around the user's question (docs/MODEL.md §5.1). The raw values are the
/// names the C API prints.
public enum ChatTemplateKind: String, Sendable, Equatable {
    /// `conv_vicuna_v1`: "… USER: <image>\n{question} ASSISTANT:".
    case vicunaV1 = "vicuna_v1"
    /// Qwen2 ChatML (`qwen_2`).
    case qwen2ChatML = "qwen2_chatml"
}
