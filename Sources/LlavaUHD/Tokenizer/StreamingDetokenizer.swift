/// Turns generated ids into text one id at a time, for token-by-token streaming.
///
/// Each `append` returns the text that became complete: bytes of a UTF-8 sequence that the
/// next ids may still finish are held back (a byte-level token or a byte-fallback piece can
/// carry part of a character), and `finish` writes out what is left. The pieces joined are
/// exactly `tokenizer.decode(ids, skipSpecialTokens:)` of all the ids, including its U+FFFD
/// for bytes that never form a character and its SentencePiece rule for the first "▁".
public struct StreamingDetokenizer: Sendable {
    public let tokenizer: any Tokenizer
    public let skipSpecialTokens: Bool
    private var state = TokenDecodingState()
    /// Decoded bytes not yet returned: at most an unfinished UTF-8 sequence (< 4 bytes).
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id and returns the newly completed text (often empty in the middle of a
    /// character). Throws `.invalidArgument` for an id outside the vocabulary; the state is
    /// then unchanged.
    public mutating func append(_ id: Int32) throws(LlavaError) -> String {
        var bytes = pending
        var next = state
        try tokenizer.appendDecoded(id, to: &bytes, state: &next, skipSpecialTokens: skipSpecialTokens)
        state = next
        let cut = UTF8Text.incompleteTailStart(bytes)
        pending = Array(bytes[cut...])
        guard cut > 0 else { return "" }
        return UTF8Text.decode(Array(bytes[..<cut]), repair: tokenizer.decodeRepair)
    }

    /// Returns the held-back bytes (decoded with U+FFFD, as `decode` would end) and starts over.
    public mutating func finish() -> String {
        let text = pending.isEmpty ? "" : UTF8Text.decode(pending, repair: tokenizer.decodeRepair)
        reset()
        return text
    }

    /// Starts a new text (the next id is the first of a text again).
    public mutating func reset() {
        pending.removeAll()
        state = TokenDecodingState()
    }

    /// The number of bytes held back waiting for the rest of a character.
    public var pendingByteCount: Int { pending.count }
}
