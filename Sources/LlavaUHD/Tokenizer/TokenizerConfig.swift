/// A token that Hugging Face tokenizers match in the text before the model sees it
/// (`added_tokens` of tokenizer.json, `added_tokens_decoder` of tokenizer_config.json).
struct AddedToken: Sendable, Equatable {
    var id: Int32
    var content: String
    /// Special tokens are skipped by `decode(skipSpecialTokens: true)`.
    var special: Bool
    /// The match also swallows whitespace on its left / right.
    var lstrip: Bool
    var rstrip: Bool
    /// The match only counts when not inside a word.
    var singleWord: Bool

    init(id: Int32, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
         singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }

    /// Reads an `AddedToken` object (`content`, `special`, `lstrip`, `rstrip`, `single_word`).
    static func parse(_ v: JSONValue, id: Int32, defaultSpecial: Bool, context: String) throws(LlavaError) -> AddedToken {
        guard let content = v["content"]?.stringValue, !content.isEmpty else {
            throw LlavaError(.badTokenizer, "\(context): added token \(id) has no content")
        }
        return AddedToken(id: id, content: content, special: v["special"]?.boolValue ?? defaultSpecial,
                          lstrip: v["lstrip"]?.boolValue ?? false, rstrip: v["rstrip"]?.boolValue ?? false,
                          singleWord: v["single_word"]?.boolValue ?? false)
    }
}

/// What tokenizer_config.json and special_tokens_map.json say (all optional).
struct TokenizerConfig: Sendable {
    /// A special-token entry: absent, explicitly null (`"bos_token": null`), or a token text.
    enum Entry: Sendable, Equatable {
        case absent, null
        case token(String)

        /// The entry, or `fallback` when absent.
        func or(_ fallback: Entry) -> Entry { self == .absent ? fallback : self }
    }

    var addBOSToken: Bool?
    var legacy: Bool?
    var tokenizerClass: String?
    var bosToken = Entry.absent
    var eosToken = Entry.absent
    var unkToken = Entry.absent
    var padToken = Entry.absent
    var addedTokens: [AddedToken] = []
    var additionalSpecialTokens: [String] = []
    /// The Jinja `chat_template` (a text-only LLM's template family is recognised from it).
    var chatTemplate: String?

    /// Reads the two files from `directory` where present; malformed JSON is `.badTokenizer`.
    static func load(directory: String) throws(LlavaError) -> TokenizerConfig {
        var config = TokenizerConfig()
        let configPath = directory + "/tokenizer_config.json"
        if fileExists(configPath) {
            let v = try readJSON(configPath)
            guard v.objectValue != nil else { throw LlavaError(.badTokenizer, "'\(configPath)' is not a JSON object") }
            config.addBOSToken = v["add_bos_token"]?.boolValue
            config.legacy = v["legacy"]?.boolValue
            config.tokenizerClass = v["tokenizer_class"]?.stringValue
            config.chatTemplate = v["chat_template"]?.stringValue
            config.bosToken = entry(v["bos_token"])
            config.eosToken = entry(v["eos_token"])
            config.unkToken = entry(v["unk_token"])
            config.padToken = entry(v["pad_token"])
            config.additionalSpecialTokens = tokenList(v["additional_special_tokens"])
            if let decoder = v["added_tokens_decoder"]?.objectValue {
                for (key, value) in decoder {
                    guard let id = Int32(key), id >= 0 else {
                        throw LlavaError(.badTokenizer, "'\(configPath)': added_tokens_decoder key '\(key)' is not a token id")
                    }
                    config.addedTokens.append(try AddedToken.parse(value, id: id, defaultSpecial: false, context: "'\(configPath)'"))
                }
            }
        }
        let mapPath = directory + "/special_tokens_map.json"
        if fileExists(mapPath) {
            let v = try readJSON(mapPath)
            guard v.objectValue != nil else { throw LlavaError(.badTokenizer, "'\(mapPath)' is not a JSON object") }
            config.bosToken = config.bosToken.or(entry(v["bos_token"]))
            config.eosToken = config.eosToken.or(entry(v["eos_token"]))
            config.unkToken = config.unkToken.or(entry(v["unk_token"]))
            config.padToken = config.padToken.or(entry(v["pad_token"]))
            if config.additionalSpecialTokens.isEmpty {
                config.additionalSpecialTokens = tokenList(v["additional_special_tokens"])
            }
        }
        return config
    }

    /// A token given as a string or as an AddedToken object with `content`.
    private static func entry(_ v: JSONValue?) -> Entry {
        guard let v else { return .absent }
        if v.isNull { return .null }
        if let s = v.stringValue { return .token(s) }
        if let s = v["content"]?.stringValue { return .token(s) }
        return .absent
    }

    private static func tokenList(_ v: JSONValue?) -> [String] {
        (v?.arrayValue ?? []).compactMap { $0.stringValue ?? $0["content"]?.stringValue }
    }
}

/// Reads and parses a JSON file of a tokenizer; any failure is `.badTokenizer` naming the file.
func readJSON(_ path: String) throws(LlavaError) -> JSONValue {
    let bytes: [UInt8]
    do { bytes = try readWholeFile(path, limit: 256 << 20) } catch {
        throw LlavaError(.badTokenizer, "cannot read '\(path)': \(error.message)")
    }
    do { return try JSONValue.parse(bytes) } catch {
        throw LlavaError(.badTokenizer, "'\(path)': \(error.description)")
    }
}
