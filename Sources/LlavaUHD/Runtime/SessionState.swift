/// What a `ChatSession` holds besides its KV rows, as `SessionFile` saves and restores it: the
/// conversation settings, what every cached position holds (the keys prefix reuse compares,
/// image positions naming their image by content hash), the ids the repetition penalty sees,
/// the chat history, the encoded images of the conversation (so that a later turn can lay the
/// whole prompt out again), the last logits and the `sample(_:)` sampler with its random stream.
struct SessionState {
    var systemPrompt: String?
    var slicing: SlicingOptions
    var positions: [PromptBuilder.PositionKey]
    var tokenHistory: [Int]
    var messages: [ChatMessage]
    var conversationImages: [EncodedImage]
    var logits: [Float]?
    var sampler: TokenSampler?
}
