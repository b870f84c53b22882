/// A decoder's tensors in a GGUF file, under llama.cpp's names:
///
/// | role | GGUF name | Hugging Face name |
/// |---|---|---|
/// | embeddings | `token_embd.weight` | `model.embed_tokens.weight` |
/// | output head | `output.weight` (absent: tied to `token_embd`) | `lm_head.weight` |
/// | final norm | `output_norm.weight` | `model.norm.weight` |
/// | per layer N | `blk.N.attn_norm`, `blk.N.ffn_norm` | `input_layernorm`, `post_attention_layernorm` |
/// | | `blk.N.attn_q/k/v/output` (+ `.bias` for Qwen2's q/k/v) | `self_attn.q/k/v/o_proj` |
/// | | `blk.N.ffn_gate/up/down` | `mlp.gate/up/down_proj` |
///
/// GGUF lists dimensions innermost first, so a `[out, in]` matrix is stored with dims
/// `[in, out]`; views here use the outermost-first shape. F32/F16/BF16 tensors become dense
/// views, the block formats of `QuantFormat` quantized ones; other GGML types are `.unsupported`.
///
/// llama.cpp's converter permutes the query and key rows of LLaMA-architecture models (every
/// `LlamaModel` conversion, `undo_permute`): within each head, row 2i + j of the file is row
/// j·d/2 + i of the Hugging Face weight, because GGML's LLaMA rotary embedding rotates
/// adjacent pairs. Qwen2 files keep Hugging Face's order (GGML's NEOX rotation).
/// `interleavedRotaryRows` reports it; the decoder puts each head's outputs back in Hugging
/// Face order after the projection, so the weights are used as stored.
struct GGUFDecoderSource: DecoderTensorSource {
    let file: GGUFFile
    let architecture: LanguageModelConfig.Architecture

    func name(_ tensor: DecoderTensor, layer: Int) -> String {
        let p = "blk.\(layer)."
        switch tensor {
        case .embedTokens: return "token_embd.weight"
        case .outputHead: return "output.weight"
        case .finalNorm: return "output_norm.weight"
        case .inputNorm: return p + "attn_norm.weight"
        case .postAttentionNorm: return p + "ffn_norm.weight"
        case .query: return p + "attn_q.weight"
        case .key: return p + "attn_k.weight"
        case .value: return p + "attn_v.weight"
        case .output: return p + "attn_output.weight"
        case .queryBias: return p + "attn_q.bias"
        case .keyBias: return p + "attn_k.bias"
        case .valueBias: return p + "attn_v.bias"
        case .outputBias: return p + "attn_output.bias"
        case .gate: return p + "ffn_gate.weight"
        case .up: return p + "ffn_up.weight"
        case .down: return p + "ffn_down.weight"
        case .gateBias: return p + "ffn_gate.bias"
        case .upBias: return p + "ffn_up.bias"
        case .downBias: return p + "ffn_down.bias"
        }
    }

    func contains(_ tensor: DecoderTensor, layer: Int) -> Bool { file.tensorInfo(name(tensor, layer: layer)) != nil }

    func matrix(_ tensor: DecoderTensor, layer: Int, shape: [Int]) throws(LlavaError) -> LinearWeight {
        let n = name(tensor, layer: layer)
        guard let info = file.tensorInfo(n) else { throw LlavaError(.missingTensor, "\(file.path): no tensor '\(n)'") }
        guard info.shape == shape else {
            throw LlavaError(.tensorMismatch, "\(file.path): tensor '\(n)' has shape \(info.shape) (GGUF dims \(info.dimensions)), expected \(shape)")
        }
        if let dtype = info.type.dtype {
            guard DType.floatWeights.contains(dtype) else {
                throw LlavaError(.tensorMismatch, "\(file.path): tensor '\(n)' has type \(info.type.name), expected a float or quantized type")
            }
            return .dense(try file.tensor(n))
        }
        return .quantized(try file.matrix(n))
    }

    func vector(_ tensor: DecoderTensor, layer: Int, count: Int) throws(LlavaError) -> [Float] {
        let n = name(tensor, layer: layer)
        guard let info = file.tensorInfo(n) else { throw LlavaError(.missingTensor, "\(file.path): no tensor '\(n)'") }
        guard info.shape == [count] else {
            throw LlavaError(.tensorMismatch, "\(file.path): tensor '\(n)' has shape \(info.shape), expected [\(count)]")
        }
        if let dtype = info.type.dtype {
            guard DType.floatWeights.contains(dtype) else {
                throw LlavaError(.tensorMismatch, "\(file.path): tensor '\(n)' has type \(info.type.name), expected a float type")
            }
            return try file.tensor(n).floats()
        }
        return try file.matrix(n).dequantized()
    }

    var interleavedRotaryRows: Bool { architecture == .llama }
    var description: String { file.path }
}
