extension LanguageModelConfig {
    /// The hyper-parameters of a LLaMA- or Qwen2-architecture GGUF file, from its metadata
    /// (`general.architecture` = `llama` or `qwen2`; keys prefixed with it):
    ///
    /// | field | GGUF key | when absent |
    /// |---|---|---|
    /// | hidden size | `embedding_length` | required |
    /// | MLP width | `feed_forward_length` | required |
    /// | layers | `block_count` | required |
    /// | heads / KV heads | `attention.head_count` / `attention.head_count_kv` | required / = heads |
    /// | RMSNorm ε | `attention.layer_norm_rms_epsilon` | required |
    /// | RoPE θ | `rope.freq_base` | 10000 (llama.cpp's default) |
    /// | context | `context_length` | required |
    /// | vocabulary | rows of `token_embd.weight` (`vocab_size`, if given, must agree) | |
    /// | tied embeddings | no `output.weight` tensor | |
    /// | BOS | `tokenizer.ggml.bos_token_id` when `tokenizer.ggml.add_bos_token` (default: true for `llama`, false for `qwen2`) | none |
    /// | EOS | `tokenizer.ggml.eos_token_id` and `tokenizer.ggml.eot_token_id` (Qwen2: also `<|endoftext|>` 151643 when in the vocabulary) | |
    ///
    /// `rope.dimension_count`, `attention.key_length` and `attention.value_length` must equal the
    /// head width when present; RoPE scaling other than `none`, sliding windows, other
    /// architectures and inconsistent sizes are refused (`.unsupported` / `.badConfig`, naming
    /// the key).
    package init(gguf file: GGUFFile) throws(LlavaError) {
        let path = file.path
        func bad(_ what: String) -> LlavaError { LlavaError(.badConfig, "\(path): \(what)") }
        guard let archName = file.architecture else { throw bad("metadata 'general.architecture' is missing") }
        let architecture: Architecture
        switch archName {
        case "llama": architecture = .llama
        case "qwen2": architecture = .qwen2
        default:
            throw LlavaError(.unsupported, "\(path): GGUF architecture '\(archName)' is not supported (supported: llama, qwen2)")
        }
        let a = archName + "."
        func positive(_ key: String) throws(LlavaError) -> Int {
            let v = try file.requireInt(a + key)
            guard v > 0, v <= Int32.max else { throw bad("metadata '\(a + key)' = \(v) must be in 1...\(Int32.max)") }
            return v
        }
        let hidden = try positive("embedding_length")
        let intermediate = try positive("feed_forward_length")
        let layers = try positive("block_count")
        let heads = try positive("attention.head_count")
        let kvHeads = file[a + "attention.head_count_kv"] == nil ? heads : try positive("attention.head_count_kv")
        let context = try positive("context_length")
        guard let eps = file.double(a + "attention.layer_norm_rms_epsilon"), eps > 0, eps < 1 else {
            throw bad("metadata '\(a)attention.layer_norm_rms_epsilon' is missing or outside (0, 1)")
        }
        let theta = file.double(a + "rope.freq_base") ?? 10000
        guard theta > 1, theta.isFinite else { throw bad("metadata '\(a)rope.freq_base' = \(theta) must be greater than 1") }
        guard hidden % heads == 0 else { throw bad("embedding_length \(hidden) is not divisible by attention.head_count \(heads)") }
        let headDim = hidden / heads
        for key in ["rope.dimension_count", "attention.key_length", "attention.value_length"] {
            if let v = file.int(a + key), v != headDim {
                throw LlavaError(.unsupported, "\(path): metadata '\(a + key)' = \(v) differs from the head width \(headDim) (partial rotary or odd head sizes are not supported)")
            }
        }
        if let scaling = file.string(a + "rope.scaling.type"), scaling != "none" {
            throw LlavaError(.unsupported, "\(path): RoPE scaling '\(scaling)' is not supported (only none)")
        }
        if let window = file.int(a + "attention.sliding_window"), window > 0, window < context {
            throw LlavaError(.unsupported, "\(path): sliding-window attention (\(window) positions) is not supported")
        }

        guard let embed = file.tensorInfo("token_embd.weight"), embed.dimensions.count == 2 else {
            throw LlavaError(.missingTensor, "\(path): no 2-D tensor 'token_embd.weight' (the embedding table)")
        }
        let vocab = embed.dimensions[1]
        guard vocab > 0 else { throw bad("token_embd.weight has no rows") }
        if let v = file.int(a + "vocab_size"), v != vocab {
            throw bad("metadata '\(a)vocab_size' = \(v) but token_embd.weight has \(vocab) rows")
        }
        let tied = file.tensorInfo("output.weight") == nil

        let addBOS = file.bool("tokenizer.ggml.add_bos_token") ?? (architecture == .llama)
        let bos = addBOS ? file.int("tokenizer.ggml.bos_token_id") : nil
        var eos: [Int] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let id = file.int(key), !eos.contains(id) { eos.append(id) }
        }
        if architecture == .qwen2, ModelConfig.qwen2EndOfText < vocab, !eos.contains(ModelConfig.qwen2EndOfText) {
            eos.append(ModelConfig.qwen2EndOfText)
        }
        if let bos, !(0..<vocab).contains(bos) { throw bad("tokenizer.ggml.bos_token_id \(bos) is outside the \(vocab)-row vocabulary") }
        if let e = eos.first(where: { !(0..<vocab).contains($0) }) {
            throw bad("end-of-sequence id \(e) is outside the \(vocab)-row vocabulary")
        }
        self.init(architecture: architecture, hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers,
                  headCount: heads, kvHeadCount: kvHeads, vocabSize: vocab, rmsNormEps: Float(eps), ropeTheta: Float(theta),
                  maxPositionEmbeddings: context, tieWordEmbeddings: tied, bosTokenId: bos, eosTokenIds: eos)
    }
}
