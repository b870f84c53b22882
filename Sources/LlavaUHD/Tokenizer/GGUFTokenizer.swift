extension Tokenizers {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`, as llama.cpp's
    /// converter writes it), rebuilt as the tokenizer the original model directory would give:
    ///
    /// * `tokenizer.ggml.model` = `llama` → `SentencePieceTokenizer` (BPE) from `tokens`, `scores`
    ///   and `token_type` (GGUF's token types are SentencePiece's piece types: 1 normal,
    ///   2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; byte fallback when byte pieces
    ///   exist), LLaMA's normalizer (identity, dummy prefix unless
    ///   `tokenizer.ggml.add_space_prefix` is false, whitespace escaped, kept as is);
    /// * `gpt2` with a `tokenizer.ggml.pre` that `ByteLevelPreTokenizer(ggufName:)` knows (`qwen2`,
    ///   `llama-bpe`, `gpt2`, `smollm`, …) → `ByteLevelBPETokenizer` with that split rule (NFC
    ///   first for `qwen2` only, as Hugging Face's Qwen2 tokenizer; whole pre-tokens found in the
    ///   vocabulary skip the merges for `llama-bpe`, as llama.cpp's `ignore_merges`), from
    ///   `tokens` and `merges`: normal tokens form the byte-level
    ///   vocabulary, control tokens are special added tokens, user-defined ones plain added
    ///   tokens, unused ones are left out, and so are the converter's fillers for ids without a
    ///   token (`[PAD<id>]`, typed unused, or user-defined by older converters: the original
    ///   tokenizer has no such tokens, so their text stays plain text).
    ///
    /// BOS/EOS/UNK/PAD come from `tokenizer.ggml.{bos,eos,unknown,padding}_token_id`, BOS is
    /// added when `tokenizer.ggml.add_bos_token` says so (default: true for `llama`, false for
    /// `gpt2`). Throws `.badTokenizer` for missing or inconsistent arrays, `.unsupported` for
    /// other tokenizer models or pre-tokenizers.
    package static func load(gguf file: GGUFFile) throws(LlavaError) -> any Tokenizer {
        let path = file.path
        func bad(_ what: String) -> LlavaError { LlavaError(.badTokenizer, "\(path): \(what)") }
        guard let model = file.string("tokenizer.ggml.model") else { throw bad("no tokenizer metadata ('tokenizer.ggml.model')") }
        guard let tokens = file.strings("tokenizer.ggml.tokens"), !tokens.isEmpty, tokens.count < Int(Int32.max) else {
            throw bad("'tokenizer.ggml.tokens' is missing, empty or not an array of strings")
        }
        let types: [Int]
        if file["tokenizer.ggml.token_type"] != nil {
            guard let t = file.ints("tokenizer.ggml.token_type"), t.count == tokens.count else {
                throw bad("'tokenizer.ggml.token_type' is not an integer array of \(tokens.count) entries")
            }
            types = t
        } else {
            types = [Int](repeating: 1, count: tokens.count)
        }
        func specialId(_ key: String) throws(LlavaError) -> Int? {
            guard let v = file[key] else { return nil }
            guard let id = v.intValue, (0..<tokens.count).contains(id) else { throw bad("'\(key)' is not a token id") }
            return id
        }
        var config = TokenizerConfig()
        if let id = try specialId("tokenizer.ggml.bos_token_id") { config.bosToken = .token(tokens[id]) }
        if let id = try specialId("tokenizer.ggml.eos_token_id") { config.eosToken = .token(tokens[id]) }
        if let id = try specialId("tokenizer.ggml.unknown_token_id") { config.unkToken = .token(tokens[id]) }
        if let id = try specialId("tokenizer.ggml.padding_token_id") { config.padToken = .token(tokens[id]) }
        config.addBOSToken = file.bool("tokenizer.ggml.add_bos_token")

        switch model {
        case "llama":
            guard let scores = file.floats("tokenizer.ggml.scores"), scores.count == tokens.count else {
                throw bad("'tokenizer.ggml.scores' is not a number array of \(tokens.count) entries")
            }
            var proto = SentencePieceModelProto()
            proto.trainer.modelType = .bpe
            proto.normalizer.name = "identity"
            proto.normalizer.addDummyPrefix = file.bool("tokenizer.ggml.add_space_prefix") ?? true
            proto.normalizer.removeExtraWhitespaces = false
            proto.pieces.reserveCapacity(tokens.count)
            for (i, text) in tokens.enumerated() {
                guard let type = SentencePieceModelProto.PieceType(rawValue: Int32(clamping: types[i])) else {
                    throw bad("token \(i) has token type \(types[i]) (expected 1...6)")
                }
                if type == .byte { proto.trainer.byteFallback = true }
                proto.pieces.append(.init(text: Array(text.utf8), score: scores[i], type: type))
            }
            return try SentencePieceTokenizer(proto: proto, config: config, context: "\(path) (GGUF tokenizer)")
        case "gpt2":
            let pre = file.string("tokenizer.ggml.pre") ?? "default"
            guard let rule = ByteLevelPreTokenizer(ggufName: pre) else {
                throw LlavaError(.unsupported, "\(path): byte-level BPE pre-tokenizer '\(pre)' is not supported "
                                 + "(supported: qwen2, deepseek-r1-qwen, llama3, llama-v3, llama-bpe, gpt2, gpt-2, smollm, starcoder, refact)")
            }
            guard let merges = file.strings("tokenizer.ggml.merges") else { throw bad("'tokenizer.ggml.merges' is missing") }
            var files = ByteLevelBPEFiles()
            files.normalizesNFC = rule == .qwen2
            files.preTokenizer = rule
            files.ignoreMerges = rule == .llama3
            files.vocabulary = ByteStringTable(expectedCount: tokens.count)
            for (i, text) in tokens.enumerated() {
                switch types[i] {
                case 1:
                    guard files.vocabulary.insert(text.utf8, value: Int32(i)) else { throw bad("token '\(text)' appears twice") }
                case 4 where text.utf8.elementsEqual("[PAD\(i)]".utf8):
                    break   // a filler that older converters typed user-defined
                case 3, 4:
                    files.addedTokens.append(AddedToken(id: Int32(i), content: text, special: types[i] == 3))
                case 5: break
                default: throw bad("token \(i) '\(text)' has token type \(types[i]), unexpected in a byte-level vocabulary")
                }
            }
            for (rank, m) in merges.enumerated() {
                let parts = m.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw bad("merge \(rank) \"\(m)\" is not two tokens") }
                try files.appendMerge(parts[0], parts[1], rank: rank, context: path)
            }
            return try ByteLevelBPETokenizer(files: files, config: config)
        default:
            throw LlavaError(.unsupported, "\(path): tokenizer model '\(model)' is not supported (only llama and gpt2)")
        }
    }
}
