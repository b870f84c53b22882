/// Text ⇄ token ids for one language model (docs/MODEL.md §5.1, §6).
///
/// Token ids are `Int32` throughout (the C ABI's token type; the image placeholder −200 of
/// `ChatTemplate.imageTokenId` fits). Text goes in as UTF-8 bytes at the lowest level, so the C
/// ABI can pass what it was given and get `.invalidUTF8` back for bad input.
///
/// Two implementations: `SentencePieceTokenizer` (LLaMA / Vicuna `tokenizer.model`) and
/// `ByteLevelBPETokenizer` (Qwen2 `tokenizer.json` or `vocab.json` + `merges.txt`);
/// `Tokenizers.load(directory:)` picks one from the files of a model directory.
/// Instances are immutable and safe to share between threads.
public protocol Tokenizer: AnyObject, Sendable {
    /// Number of token ids: the largest id + 1, added tokens included. (The model's embedding
    /// table may have more rows; ids beyond this have no text.)
    var vocabularySize: Int { get }
    /// The beginning-of-sequence id, nil when the tokenizer has none (Qwen2).
    var bosTokenId: Int32? { get }
    /// The end-of-sequence id the tokenizer configuration names (`</s>` 2 for LLaMA,
    /// `<|im_end|>` for Qwen2-Instruct, `<|endoftext|>` without a configuration).
    var eosTokenId: Int32? { get }
    var unknownTokenId: Int32? { get }
    var padTokenId: Int32? { get }
    /// Whether `tokenizer(text)` upstream adds BOS (`add_bos_token`: true for LLaMA,
    /// false for Qwen2). `encode(_:addBOS:parseSpecial:)` takes it explicitly.
    var addsBOSByDefault: Bool { get }
    /// How decoding turns invalid UTF-8 into text.
    var decodeRepair: UTF8Repair { get }
    /// An upper bound on the input bytes one token can stand for, nil when there is none (a
    /// normalizer that may drop text, such as SentencePiece's whitespace collapsing or a
    /// character map, or unknown text fused into one token). A text of n bytes then encodes to
    /// at least ⌈n / bound⌉ ids, which lets a caller refuse a text too long for its context
    /// before paying for its encoding.
    var inputBytesPerTokenBound: Int? { get }

    /// True for special tokens: SentencePiece control and unknown pieces, and added tokens
    /// marked special. `decode(skipSpecialTokens: true)` leaves them out.
    func isSpecialToken(_ id: Int32) -> Bool

    /// Encodes UTF-8 text. `addBOS` puts the BOS id first (if there is one). `parseSpecial`
    /// turns special-token text in the input (`</s>`, `<|im_end|>`, …) into its id, as Hugging
    /// Face tokenizers do; without it the text is encoded as plain text, as the SentencePiece
    /// library does. Throws `.invalidUTF8` when `text` is not UTF-8.
    func encode(utf8 text: [UInt8], addBOS: Bool, parseSpecial: Bool) throws(LlavaError) -> [Int32]

    /// The vocabulary string of an id (`"▁hello"`, `"<0x0A>"`, `"Ġhello"`, `"<|im_end|>"`),
    /// nil when the id is out of range.
    func token(forId id: Int32) -> String?
    /// The id of a vocabulary string, nil when it is not in the vocabulary.
    func id(forToken token: String) -> Int32?

    /// The bytes one id stands for on its own, as `luhd_token_to_piece` returns them: "▁"
    /// becomes a space, a byte-fallback piece its byte, a byte-level token its raw bytes (which
    /// may be part of a UTF-8 sequence). Special tokens give their text when `renderSpecial`,
    /// otherwise nothing. nil when the id is out of range.
    func piece(forId id: Int32, renderSpecial: Bool) -> [UInt8]?

    /// One step of decoding: appends the bytes of `id` to `bytes`, following the decoder's
    /// context rules (SentencePiece drops the "▁" of the first piece of a text). `decode` and
    /// `StreamingDetokenizer` are built on it. Throws `.invalidArgument` for an id out of range.
    func appendDecoded(_ id: Int32, to bytes: inout [UInt8], state: inout TokenDecodingState,
                       skipSpecialTokens: Bool) throws(LlavaError)
}

/// What a decoder remembers between tokens (see `Tokenizer.appendDecoded`).
public struct TokenDecodingState: Sendable, Equatable {
    /// No text has been produced yet.
    var textIsEmpty = true
    /// Still at the start of the text, where SentencePiece drops a piece's leading "▁".
    var atStart = true
    /// The previous piece had its leading "▁" dropped.
    var consumedDummyPrefix = false

    public init() {}
}

extension Tokenizer {
    /// Encodes a Swift string (always valid UTF-8).
    public func encode(_ text: String, addBOS: Bool, parseSpecial: Bool) throws(LlavaError) -> [Int32] {
        try encode(utf8: Array(text.utf8), addBOS: addBOS, parseSpecial: parseSpecial)
    }

    /// Decodes ids to bytes (possibly invalid UTF-8 when ids split a character).
    public func decodeBytes(_ ids: [Int32], skipSpecialTokens: Bool = true) throws(LlavaError) -> [UInt8] {
        var bytes: [UInt8] = []
        var state = TokenDecodingState()
        for id in ids { try appendDecoded(id, to: &bytes, state: &state, skipSpecialTokens: skipSpecialTokens) }
        return bytes
    }

    /// Decodes ids to text; invalid UTF-8 becomes U+FFFD as `decodeRepair` says.
    /// `skipSpecialTokens` (the default, as upstream decodes generated text) leaves special
    /// tokens out. Without it, SentencePiece decodes exactly as the sentencepiece library (control
    /// pieces such as `</s>` give no text, the unknown piece reads " ⁇ ") and byte-level BPE
    /// writes special tokens as their text (`<|im_end|>`), as Hugging Face `tokenizers` does.
    /// Throws `.invalidArgument` for an id outside the vocabulary (the image id −200 included).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true) throws(LlavaError) -> String {
        UTF8Text.decode(try decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), repair: decodeRepair)
    }

    /// Throws `.invalidArgument` unless `0 <= id < vocabularySize`.
    func checkId(_ id: Int32) throws(LlavaError) {
        guard id >= 0 && Int(id) < vocabularySize else {
            throw LlavaError(.invalidArgument, "token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
        }
    }
}
