import LlavaUHD
import TestSupport

/// Reads a plain transformers `config.json` (`LlamaForCausalLM` / `Qwen2ForCausalLM`, as the
/// HF fixtures store it) into the library's config. LLaVA configs go through `ModelConfig`.
func huggingFaceConfig(_ directory: String) throws -> LanguageModelConfig {
    let json = try Fixtures.json(directory + "/config.json")
    func int(_ key: String) throws -> Int {
        guard let v = json[key]?.intValue else { throw LlavaError(.badConfig, "\(directory): no integer \(key)") }
        return v
    }
    func number(_ key: String) throws -> Float {
        guard let v = json[key]?.doubleValue else { throw LlavaError(.badConfig, "\(directory): no number \(key)") }
        return Float(v)
    }
    let type = json["model_type"]?.stringValue
    let architecture: LanguageModelConfig.Architecture = type == "qwen2" ? .qwen2 : .llama
    let config = LanguageModelConfig(
        architecture: architecture, hiddenSize: try int("hidden_size"), intermediateSize: try int("intermediate_size"),
        layerCount: try int("num_hidden_layers"), headCount: try int("num_attention_heads"),
        kvHeadCount: try int("num_key_value_heads"), vocabSize: try int("vocab_size"),
        rmsNormEps: try number("rms_norm_eps"), ropeTheta: try number("rope_theta"),
        maxPositionEmbeddings: try int("max_position_embeddings"),
        tieWordEmbeddings: json["tie_word_embeddings"]?.boolValue ?? false,
        bosTokenId: json["bos_token_id"]?.intValue, eosTokenIds: json["eos_token_id"]?.intValue.map { [$0] } ?? [])
    if let headDim = json["head_dim"]?.intValue, headDim != config.headDim {
        throw LlavaError(.badConfig, "\(directory): head_dim \(headDim) is not hidden/heads")
    }
    return config
}

/// A decoder and its config from a model directory (config.json + model.safetensors).
func loadHuggingFaceDecoder(_ directory: String) throws -> TransformerDecoder {
    try TransformerDecoder(config: try huggingFaceConfig(directory), weights: WeightStore(directory: directory))
}

/// Index of the largest value (the first one on ties, as torch.argmax).
func argmax(_ x: ArraySlice<Float>) -> Int {
    var best = x.startIndex
    for i in x.indices where x[i] > x[best] { best = i }
    return best - x.startIndex
}

func argmax(_ x: [Float]) -> Int { argmax(x[...]) }

/// The rows `r` of a row-major `[rows × cols]` matrix.
func row(_ m: [Float], _ r: Int, width: Int) -> [Float] { Array(m[(r * width)..<((r + 1) * width)]) }

/// A context for tests: both cores unless asked otherwise.
func testContext(threads: Int = 2, abort: (() -> Bool)? = nil) -> ComputeContext {
    ComputeContext(threads: threads, shouldAbort: abort)
}
