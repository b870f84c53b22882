/// What one request may ask of the server; past a limit it gets a 4xx JSON error.
struct ServerLimits: Sendable {
    /// Largest request body (413 above).
    var maxBodyBytes: Int
    /// Most images in one request, earlier turns included (400 above).
    var maxImages: Int
    /// Largest width × height of one image, read from its header before decoding (400 above).
    var maxImagePixels: Int
    /// Seconds a request may take from arrival to its last byte, queueing included (503 while
    /// queued, 408 while computing).
    var timeoutSeconds: Double
    /// `max_tokens` when the request gives none.
    var defaultMaxTokens: Int
}
