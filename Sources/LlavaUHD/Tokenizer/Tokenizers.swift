/// Chooses and loads the tokenizer of a model directory.
public enum Tokenizers {
    /// Loads the tokenizer from the files of `directory`:
    ///
    /// * `tokenizer.model` → `SentencePieceTokenizer` (upstream loads LLaMA tokenizers with
    ///   `use_fast=False`, so it wins over a tokenizer.json next to it);
    /// * else `tokenizer.json` → `ByteLevelBPETokenizer`;
    /// * else `vocab.json` + `merges.txt` → `ByteLevelBPETokenizer`.
    ///
    /// tokenizer_config.json and special_tokens_map.json, where present, give the special tokens,
    /// `add_bos_token`, `legacy` and (for vocab.json) the added tokens.
    /// Throws `.badTokenizer` when no tokenizer files are there or they are malformed,
    /// `.unsupported` for tokenizer kinds the library does not implement.
    public static func load(directory: String) throws(LlavaError) -> any Tokenizer {
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let config = try TokenizerConfig.load(directory: dir)
        if fileExists(dir + "/tokenizer.model") {
            return try SentencePieceTokenizer(modelFile: dir + "/tokenizer.model", config: config)
        }
        if fileExists(dir + "/tokenizer.json") {
            return try ByteLevelBPETokenizer(files: try ByteLevelBPEFiles.load(tokenizerJSON: dir + "/tokenizer.json"), config: config)
        }
        if fileExists(dir + "/vocab.json") && fileExists(dir + "/merges.txt") {
            if let cls = config.tokenizerClass, !cls.hasPrefix("Qwen2Tokenizer") {
                throw LlavaError(.unsupported, "'\(dir)': tokenizer class \(cls) is not supported with vocab.json + merges.txt (only Qwen2Tokenizer)")
            }
            return try ByteLevelBPETokenizer(files: try ByteLevelBPEFiles.load(vocabJSON: dir + "/vocab.json", merges: dir + "/merges.txt",
                                                                                addedTokens: config.addedTokens),
                                             config: config)
        }
        throw LlavaError(.badTokenizer, "'\(dir)' has no tokenizer files (tokenizer.model, tokenizer.json, or vocab.json + merges.txt)")
    }
}
