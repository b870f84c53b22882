/// The status of a library call. The raw values are the C ABI's `luhd_status` codes
/// (include/llavauhd.h) and never change once released; new codes are only appended.
public enum Status: Int32, Sendable, CaseIterable {
    case ok = 0
    /// A null pointer, a wrong struct size, an out-of-range parameter.
    case invalidArgument = 1
    /// A file or directory could not be opened, read or memory-mapped.
    case io = 2
    /// A weight file is malformed: header length, JSON, dtype, spans, overlaps, shard index.
    case badWeights = 3
    /// A tensor the model needs is not in the weight files.
    case missingTensor = 4
    /// A tensor has the wrong shape or dtype for what the model expects.
    case tensorMismatch = 5
    /// config.json is missing, malformed, lacks a key or contradicts itself.
    case badConfig = 6
    /// The model (architecture, projector or feature mode) is not one the library runs.
    case unsupported = 7
    /// An image could not be decoded (corrupt, truncated, unknown format).
    case badImage = 8
    /// An image is larger than the configured pixel limit (decompression-bomb guard).
    case imageTooLarge = 9
    /// A tokenizer file is missing or malformed.
    case badTokenizer = 10
    /// Text given to the library is not valid UTF-8.
    case invalidUTF8 = 11
    /// The session's context window cannot hold the request.
    case contextFull = 12
    /// A callback asked to stop; the handle stays usable.
    case cancelled = 13
    /// An allocation the library could check in advance would exceed its limits.
    case outOfMemory = 14
    /// A caller-provided buffer is too small; the call says how much is needed.
    case bufferTooSmall = 15
    /// A bug in the library: an invariant did not hold.
    case `internal` = 16
    /// A saved session file is not one, or is damaged: truncated, a checksum that does not
    /// match, a size or value that contradicts the file or the model, an unknown format version.
    case badSessionFile = 17
    /// A sound saved session file that another model wrote (its model digest differs).
    case sessionMismatch = 18

    /// The short name of the status, as `luhd_status_string` returns it (static and
    /// NUL-terminated, so the C function can hand out its pointer).
    public var name: StaticString {
        switch self {
        case .ok: "ok"
        case .invalidArgument: "invalid argument"
        case .io: "I/O error"
        case .badWeights: "malformed weight file"
        case .missingTensor: "missing tensor"
        case .tensorMismatch: "tensor shape or dtype mismatch"
        case .badConfig: "bad model config"
        case .unsupported: "unsupported model"
        case .badImage: "bad image"
        case .imageTooLarge: "image too large"
        case .badTokenizer: "bad tokenizer"
        case .invalidUTF8: "invalid UTF-8"
        case .contextFull: "context full"
        case .cancelled: "cancelled"
        case .outOfMemory: "out of memory"
        case .bufferTooSmall: "buffer too small"
        case .internal: "internal error"
        case .badSessionFile: "bad session file"
        case .sessionMismatch: "session file of another model"
        }
    }
}

/// The one error type of the library: a status and a message that says what went wrong,
/// naming the file, tensor, key or argument involved.
public struct LlavaError: Error, CustomStringConvertible, Sendable, Equatable {
    public let status: Status
    public let message: String

    public init(_ status: Status, _ message: String) {
        precondition(status != .ok, "an error cannot have status ok")
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.name): \(message)" }
}
