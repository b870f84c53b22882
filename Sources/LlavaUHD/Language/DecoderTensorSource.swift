/// One tensor of a LLaMA/Qwen2 decoder, named by its role.
enum DecoderTensor: CaseIterable, Sendable {
    case embedTokens, outputHead, finalNorm
    case inputNorm, postAttentionNorm
    case query, key, value, output
    case queryBias, keyBias, valueBias, outputBias
    case gate, up, down
    case gateBias, upBias, downBias

    /// The 2-D projection weights of a layer (attention and MLP), the ones `ModelQuantizer`
    /// may store quantized.
    static let layerProjections: [DecoderTensor] = [.query, .key, .value, .output, .gate, .up, .down]

    /// True for the tensors that exist once per layer.
    var isPerLayer: Bool {
        switch self {
        case .embedTokens, .outputHead, .finalNorm: false
        default: true
        }
    }
}

/// Where a decoder's tensors come from: a safetensors directory under the Hugging Face names,
/// or a GGUF file under llama.cpp's names. A source names tensors, says whether one exists and
/// hands out checked views of them; `DecoderLayer` and `TransformerDecoder` ask for each tensor
/// by role, so the two layouts share one loading and validation path.
protocol DecoderTensorSource {
    /// The file's name of `tensor` (of layer `layer` for the per-layer ones).
    func name(_ tensor: DecoderTensor, layer: Int) -> String
    /// True when the file holds the tensor.
    func contains(_ tensor: DecoderTensor, layer: Int) -> Bool
    /// The tensor as a linear weight of exactly `shape` (`[rows, columns]`). Throws
    /// `.missingTensor`, `.tensorMismatch` or `.unsupported` (a storage type the kernels lack).
    func matrix(_ tensor: DecoderTensor, layer: Int, shape: [Int]) throws(LlavaError) -> LinearWeight
    /// The tensor as `count` floats (norm weights, biases). Same errors.
    func vector(_ tensor: DecoderTensor, layer: Int, count: Int) throws(LlavaError) -> [Float]
    /// True when the query and key rows of every head are stored in GGML's interleaved rotary
    /// order (pairs (2i, 2i+1)) instead of Hugging Face's halves (i, i + d/2).
    var interleavedRotaryRows: Bool { get }
    /// Text that names the source in messages ("the weight files", "model.gguf").
    var description: String { get }
}

/// The Hugging Face names in a `WeightStore`: `model.embed_tokens`, `model.layers.N.…`,
/// `model.norm`, `lm_head`. Matrices may be dense or quantized by `ModelQuantizer`.
struct SafetensorsDecoderSource: DecoderTensorSource {
    let store: WeightStore

    func name(_ tensor: DecoderTensor, layer: Int) -> String { Self.name(tensor, layer: layer) }

    /// The Hugging Face name of `tensor` (of layer `layer` for the per-layer ones).
    static func name(_ tensor: DecoderTensor, layer: Int) -> String {
        let p = "model.layers.\(layer)."
        switch tensor {
        case .embedTokens: return "model.embed_tokens.weight"
        case .outputHead: return "lm_head.weight"
        case .finalNorm: return "model.norm.weight"
        case .inputNorm: return p + "input_layernorm.weight"
        case .postAttentionNorm: return p + "post_attention_layernorm.weight"
        case .query: return p + "self_attn.q_proj.weight"
        case .key: return p + "self_attn.k_proj.weight"
        case .value: return p + "self_attn.v_proj.weight"
        case .output: return p + "self_attn.o_proj.weight"
        case .queryBias: return p + "self_attn.q_proj.bias"
        case .keyBias: return p + "self_attn.k_proj.bias"
        case .valueBias: return p + "self_attn.v_proj.bias"
        case .outputBias: return p + "self_attn.o_proj.bias"
        case .gate: return p + "mlp.gate_proj.weight"
        case .up: return p + "mlp.up_proj.weight"
        case .down: return p + "mlp.down_proj.weight"
        case .gateBias: return p + "mlp.gate_proj.bias"
        case .upBias: return p + "mlp.up_proj.bias"
        case .downBias: return p + "mlp.down_proj.bias"
        }
    }

    func contains(_ tensor: DecoderTensor, layer: Int) -> Bool { store.contains(name(tensor, layer: layer)) }

    func matrix(_ tensor: DecoderTensor, layer: Int, shape: [Int]) throws(LlavaError) -> LinearWeight {
        try store.linearWeight(name(tensor, layer: layer), shape: shape)
    }

    func vector(_ tensor: DecoderTensor, layer: Int, count: Int) throws(LlavaError) -> [Float] {
        try store.tensor(name(tensor, layer: layer), shape: [count]).floats()
    }

    var interleavedRotaryRows: Bool { false }
    var description: String { "the weight files" }
}
