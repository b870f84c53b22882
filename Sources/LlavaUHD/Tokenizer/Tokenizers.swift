/// Chooses and loads the tokenizer of a model directory.
public enum Tokenizers {
    /// The files `load(directory:)` looks for, in order of preference.
    static let sentencePieceModel = "tokenizer.model", tokenizerJSON = "tokenizer.json"
    static let vocabJSON = "vocab.json", mergesText = "merges.txt"

    /// True when `directory` has a file `load(directory:)` reads (a vocab.json without its
    /// merges.txt counts, so that `load` reports the missing half rather than being skipped).
    public static func hasFiles(in directory: String) -> Bool {
        [sentencePieceModel, tokenizerJSON, vocabJSON].contains { fileExists(directory + "/" + $0) }
    }

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
        let model = dir + "/" + sentencePieceModel, json = dir + "/" + tokenizerJSON
        let vocab = dir + "/" + vocabJSON, merges = dir + "/" + mergesText
        if fileExists(model) {
            return try SentencePieceTokenizer(modelFile: model, config: config)
        }
        if fileExists(json) {
            return try ByteLevelBPETokenizer(files: try ByteLevelBPEFiles.load(tokenizerJSON: json), config: config)
        }
        if fileExists(vocab) && fileExists(merges) {
            if let cls = config.tokenizerClass, !cls.hasPrefix("Qwen2Tokenizer") {
                throw LlavaError(.unsupported, "'\(dir)': tokenizer class \(cls) is not supported with vocab.json + merges.txt (only Qwen2Tokenizer)")
            }
            return try ByteLevelBPETokenizer(files: try ByteLevelBPEFiles.load(vocabJSON: vocab, merges: merges,
                                                                                addedTokens: config.addedTokens),
                                             config: config)
        }
        throw LlavaError(.badTokenizer, "'\(dir)' has no tokenizer files (\(sentencePieceModel), \(tokenizerJSON), or \(vocabJSON) + \(mergesText))")
    }
}
