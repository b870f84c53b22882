/// The contents of a byte-level BPE tokenizer's files, before the tokenizer indexes them:
/// vocabulary spellings and ids, merges in rank order, added tokens.
///
/// Two layouts (Hugging Face): `tokenizer.json` (model, added tokens, normalizer,
/// pre-tokenizer and decoder in one file), or `vocab.json` + `merges.txt` with the added
/// tokens in tokenizer_config.json (the slow `Qwen2Tokenizer`, whose NFC normalization and
/// split pattern are built in).
struct ByteLevelBPEFiles {
    /// Vocabulary spelling (UTF-8 of the byte-level string) → id.
    var vocabulary = ByteStringTable()
    /// Merges in rank order, as (left id, right id, merged id).
    var merges: [(left: Int32, right: Int32, merged: Int32)] = []
    var addedTokens: [AddedToken] = []
    /// tokenizer.json `model.ignore_merges`: a pre-token already in the vocabulary is not split.
    var ignoreMerges = false
    /// Whether NFC runs before splitting (tokenizer.json `normalizer`; always for vocab.json).
    var normalizesNFC = true
    /// How the text is split before BPE (tokenizer.json's Split pattern; Qwen2's for vocab.json).
    var preTokenizer = ByteLevelPreTokenizer.qwen2
    /// Reused while reading merges.
    private var mergedScratch: [UInt8] = []

    /// Reads tokenizer.json.
    static func load(tokenizerJSON path: String) throws(LlavaError) -> ByteLevelBPEFiles {
        let root = try readJSON(path)
        let context = "'\(path)'"
        func fail(_ what: String) -> LlavaError { LlavaError(.badTokenizer, "\(context): \(what)") }
        func unsupported(_ what: String) -> LlavaError { LlavaError(.unsupported, "\(context): \(what)") }

        guard let model = root["model"], model.objectValue != nil else { throw fail("no \"model\" object") }
        guard model["type"]?.stringValue ?? "BPE" == "BPE" else {
            throw unsupported("model type \(model["type"]?.stringValue ?? "?") is not supported (only BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key]?.stringValue, !v.isEmpty { throw unsupported("BPE \(key) \"\(v)\" is not supported") }
        }
        if let d = model["dropout"]?.doubleValue, d > 0 { throw unsupported("BPE dropout is not supported") }
        if model["byte_fallback"]?.boolValue == true { throw unsupported("BPE byte_fallback is not supported for byte-level vocabularies") }

        // The pipeline around the model must be Qwen2's: NFC, the Qwen2 split, byte-level.
        var files = ByteLevelBPEFiles()
        files.ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        files.normalizesNFC = try normalizerIsNFC(root["normalizer"], context: context)
        try checkPreTokenizer(root["pre_tokenizer"], context: context)
        if let decoder = root["decoder"], !decoder.isNull, decoder["type"]?.stringValue != "ByteLevel" {
            throw unsupported("decoder \(decoder["type"]?.stringValue ?? "?") is not supported (only ByteLevel)")
        }

        guard let vocab = model["vocab"]?.objectValue else { throw fail("model.vocab is not an object") }
        files.vocabulary = try readVocabulary(vocab, context: context)
        guard let merges = model["merges"]?.arrayValue else { throw fail("model.merges is not an array") }
        files.merges.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            let pair: (Substring, Substring)
            if let s = m.stringValue {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank) \"\(s)\" is not two tokens") }
                pair = (parts[0], parts[1])
            } else if let a = m.arrayValue, a.count == 2, let l = a[0].stringValue, let r = a[1].stringValue {
                pair = (l[...], r[...])
            } else {
                throw fail("merge \(rank) is neither \"a b\" nor [a, b]")
            }
            try files.appendMerge(pair.0, pair.1, rank: rank, context: context)
        }

        if let added = root["added_tokens"] {
            guard let list = added.arrayValue else { throw fail("added_tokens is not an array") }
            for t in list {
                guard let id = t["id"]?.intValue, id >= 0, id < Int(Int32.max) else { throw fail("an added token has no valid id") }
                files.addedTokens.append(try AddedToken.parse(t, id: Int32(id), defaultSpecial: false, context: context))
            }
        }
        return files
    }

    /// Reads vocab.json and merges.txt; added tokens come from the configuration.
    static func load(vocabJSON vocabPath: String, merges mergesPath: String,
                     addedTokens: [AddedToken]) throws(LlavaError) -> ByteLevelBPEFiles {
        let root = try readJSON(vocabPath)
        guard let vocab = root.objectValue else { throw LlavaError(.badTokenizer, "'\(vocabPath)' is not a JSON object") }
        var files = ByteLevelBPEFiles()
        files.vocabulary = try readVocabulary(vocab, context: "'\(vocabPath)'")
        files.addedTokens = addedTokens

        let text: [UInt8]
        do { text = try readWholeFile(mergesPath, limit: 256 << 20) } catch {
            throw LlavaError(.badTokenizer, "cannot read '\(mergesPath)': \(error.message)")
        }
        guard UTF8Text.isValid(text) else { throw LlavaError(.badTokenizer, "'\(mergesPath)' is not valid UTF-8") }
        let context = "'\(mergesPath)'"
        var lineNumber = 0
        var rank = 0
        var lineStart = 0
        while lineStart < text.count {
            var lineEnd = lineStart
            while lineEnd < text.count && text[lineEnd] != 0x0A { lineEnd += 1 }
            defer { lineStart = lineEnd + 1; lineNumber += 1 }
            // Python's str.split(): runs of ASCII whitespace separate the two tokens.
            let fields = text[lineStart..<lineEnd].split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0B || $0 == 0x0C })
            if fields.isEmpty { continue }
            if lineNumber == 0 && fields[0].starts(with: Array("#version:".utf8)) { continue }
            guard fields.count == 2 else {
                throw LlavaError(.badTokenizer, "\(context): line \(lineNumber + 1) is not two tokens")
            }
            try files.appendMerge(String(decoding: fields[0], as: UTF8.self)[...], String(decoding: fields[1], as: UTF8.self)[...],
                                  rank: rank, context: context)
            rank += 1
        }
        return files
    }

    private static func readVocabulary(_ vocab: [(String, JSONValue)], context: String) throws(LlavaError) -> ByteStringTable {
        var table = ByteStringTable(expectedCount: vocab.count)
        for (token, value) in vocab {
            guard let id = value.intValue, id >= 0, id < Int(Int32.max) else {
                throw LlavaError(.badTokenizer, "\(context): vocabulary entry \"\(token)\" has no valid id")
            }
            guard table.insert(token.utf8, value: Int32(id)) else {
                throw LlavaError(.badTokenizer, "\(context): vocabulary entry \"\(token)\" appears twice")
            }
        }
        return table
    }

    mutating func appendMerge(_ left: Substring, _ right: Substring, rank: Int, context: String) throws(LlavaError) {
        guard let l = vocabulary.value(for: left.utf8), let r = vocabulary.value(for: right.utf8) else {
            throw LlavaError(.badTokenizer, "\(context): merge \(rank) \"\(left) \(right)\" uses a token that is not in the vocabulary")
        }
        mergedScratch.removeAll(keepingCapacity: true)
        mergedScratch.append(contentsOf: left.utf8)
        mergedScratch.append(contentsOf: right.utf8)
        guard let m = vocabulary.value(for: mergedScratch) else {
            throw LlavaError(.badTokenizer, "\(context): merge \(rank) \"\(left) \(right)\" makes a token that is not in the vocabulary")
        }
        merges.append((l, r, m))
    }

    private static func normalizerIsNFC(_ v: JSONValue?, context: String) throws(LlavaError) -> Bool {
        guard let v, !v.isNull else { return false }
        switch v["type"]?.stringValue {
        case "NFC": return true
        case "Sequence":
            let list = v["normalizers"]?.arrayValue ?? []
            var nfc = false
            for n in list {
                guard n["type"]?.stringValue == "NFC" else {
                    throw LlavaError(.unsupported, "\(context): normalizer \(n["type"]?.stringValue ?? "?") is not supported (only NFC)")
                }
                nfc = true
            }
            return nfc
        default:
            throw LlavaError(.unsupported, "\(context): normalizer \(v["type"]?.stringValue ?? "?") is not supported (only NFC)")
        }
    }

    /// Accepts Qwen2's pre-tokenizer: Split(Qwen2 pattern, Isolated) then ByteLevel without its
    /// own regex and without a prefix space.
    private static func checkPreTokenizer(_ v: JSONValue?, context: String) throws(LlavaError) {
        guard let v, !v.isNull else {
            throw LlavaError(.unsupported, "\(context): a byte-level tokenizer without pre-tokenizer is not supported")
        }
        let steps = v["type"]?.stringValue == "Sequence" ? (v["pretokenizers"]?.arrayValue ?? []) : [v]
        var sawSplit = false, sawByteLevel = false
        for step in steps {
            switch step["type"]?.stringValue {
            case "Split":
                guard step["pattern"]?["Regex"]?.stringValue == ByteLevelPreTokenizer.qwen2Pattern,
                      step["behavior"]?.stringValue == "Isolated", step["invert"]?.boolValue != true else {
                    throw LlavaError(.unsupported, "\(context): only Qwen2's split pattern (Isolated) is supported")
                }
                sawSplit = true
            case "ByteLevel":
                guard step["use_regex"]?.boolValue == false, step["add_prefix_space"]?.boolValue != true else {
                    throw LlavaError(.unsupported, "\(context): ByteLevel pre-tokenization with its own regex or a prefix space is not supported")
                }
                sawByteLevel = true
            default:
                throw LlavaError(.unsupported, "\(context): pre-tokenizer \(step["type"]?.stringValue ?? "?") is not supported")
            }
        }
        guard sawSplit && sawByteLevel else {
            throw LlavaError(.unsupported, "\(context): expected Qwen2's Split + ByteLevel pre-tokenizer")
        }
    }
}
