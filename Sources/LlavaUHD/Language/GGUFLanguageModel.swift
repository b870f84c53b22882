#if canImport(Glibc)
import Glibc
#endif

/// A GGUF file as the LLM of a model directory.
///
/// ## Layout
/// A LLaVA-UHD model directory normally keeps every tensor in safetensors. Its LLM may instead
/// come from a LLaMA- or Qwen2-architecture GGUF file (for example one of llama.cpp's
/// quantizations of the same base model):
///
/// * `config.json` may name it: `"llm_gguf": "name.gguf"`, a plain file name in the model
///   directory like the safetensors shard names (no `/`, not `.` or `..`; the file must exist
///   and, symbolic links resolved, lie inside the directory);
/// * otherwise, a directory holding exactly one `*.gguf` file uses that file; several `*.gguf`
///   files without `llm_gguf` are an error (`.badConfig`).
///
/// The vision tower and the projector still come from the directory's safetensors files, and
/// config.json still describes the whole model. The GGUF file then provides the LLM's tensors
/// (`GGUFDecoderSource` names; any LLM tensors also present in safetensors are not used) and,
/// when the directory has no tokenizer files, the tokenizer (`Tokenizers.load(gguf:)`). Its
/// metadata must agree with config.json on the sizes the model depends on (hidden size, MLP
/// width, layers, heads, KV heads, vocabulary) and on RMSNorm ε and RoPE θ (to float32
/// precision): a mismatch is `.badConfig` naming both values. BOS/EOS ids, the chat template
/// and the image-token layout stay config.json's.
package enum GGUFLanguageModel {
    /// The config.json key that names the GGUF file.
    package static let configKey = "llm_gguf"

    /// The GGUF file the directory's LLM comes from, or nil when it has none. `name` is the
    /// directory's config.json `llm_gguf` (`ModelConfig.languageGGUFName`). Like a shard name,
    /// `llm_gguf` must be a plain file name inside the directory: an absolute path, `..`, a
    /// name with `/` or a link to a file outside the directory is `.badConfig`, as are a missing
    /// file and several `*.gguf` files with no `llm_gguf`.
    package static func locate(directory: String, named name: String?) throws(LlavaError) -> String? {
        if let name {
            let configPath = directory + "/config.json"
            let bytes = Array(name.utf8)
            guard !name.isEmpty, !bytes.contains(UInt8(ascii: "/")), !bytes.contains(0), name != ".", name != ".." else {
                throw LlavaError(.badConfig, "\(configPath): '\(configKey)' is '\(name)', but it must be a plain file name in the model directory")
            }
            let path = directory + "/" + name
            guard fileExists(path) else {
                throw LlavaError(.badConfig, "\(configPath): '\(configKey)' names '\(name)', which does not exist in '\(directory)'")
            }
            guard let real = realPath(path), let realDirectory = realPath(directory), real.hasPrefix(realDirectory + "/") else {
                throw LlavaError(.badConfig, "\(configPath): '\(configKey)' names '\(name)', a link to a file outside '\(directory)'")
            }
            return path
        }
        let ggufs = try listDirectory(directory).filter { $0.hasSuffix(".gguf") && fileExists(directory + "/" + $0) }
        if ggufs.count > 1 {
            throw LlavaError(.badConfig, "'\(directory)' holds several GGUF files (\(ggufs.joined(separator: ", "))); name the LLM's with \"\(configKey)\" in config.json")
        }
        return ggufs.first.map { directory + "/" + $0 }
    }

    /// Checks the GGUF file's hyper-parameters against the directory's config (see the type's
    /// documentation) and returns the config to build the decoder with: config.json's, with the
    /// output head tied when the file has no `output.weight`.
    package static func reconcile(_ config: LanguageModelConfig, with file: GGUFFile) throws(LlavaError) -> LanguageModelConfig {
        let g = try LanguageModelConfig(gguf: file)
        func mismatch(_ what: String, _ a: some CustomStringConvertible, _ b: some CustomStringConvertible) -> LlavaError {
            LlavaError(.badConfig, "config.json says \(what) \(a) but the GGUF LLM '\(file.path)' has \(b)")
        }
        if g.architecture != config.architecture { throw mismatch("architecture", config.architecture.rawValue, g.architecture.rawValue) }
        let sizes: [(String, Int, Int)] = [
            ("hidden_size", config.hiddenSize, g.hiddenSize), ("intermediate_size", config.intermediateSize, g.intermediateSize),
            ("num_hidden_layers", config.layerCount, g.layerCount), ("num_attention_heads", config.headCount, g.headCount),
            ("num_key_value_heads", config.kvHeadCount, g.kvHeadCount), ("vocab_size", config.vocabSize, g.vocabSize),
        ]
        for (name, a, b) in sizes where a != b { throw mismatch(name, a, b) }
        if abs(config.rmsNormEps - g.rmsNormEps) > 1e-6 * config.rmsNormEps { throw mismatch("rms_norm_eps", config.rmsNormEps, g.rmsNormEps) }
        if abs(config.ropeTheta - g.ropeTheta) > 1e-6 * config.ropeTheta { throw mismatch("rope_theta", config.ropeTheta, g.ropeTheta) }
        var out = config
        out.tieWordEmbeddings = g.tieWordEmbeddings
        return out
    }
}

/// The absolute path with every symbolic link resolved (`realpath`), nil when it cannot be resolved.
private func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
