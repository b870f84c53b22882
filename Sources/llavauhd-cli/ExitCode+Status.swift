import ArgumentParser
import LlavaUHD

/// The exit codes of `llavauhd`, one per class of failure, so scripts can tell a bad argument
/// from a bad model, a missing file or a bad image:
///
/// | code | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | internal error, out of memory, anything else |
/// | 64 | usage: a bad option or argument (also the argument parser's own errors), invalid UTF-8 |
/// | 65 | the model directory: bad config, weights, tensors, tokenizer, unsupported model |
/// | 66 | a file or directory could not be opened or read |
/// | 67 | an image could not be decoded or is too large |
/// | 68 | the context window cannot hold the conversation |
/// | 69 | a saved session file is damaged or belongs to another model |
/// | 130 | interrupted (Ctrl-C) |
extension ExitCode {
    static let model = ExitCode(65)
    static let io = ExitCode(66)
    static let image = ExitCode(67)
    static let contextFull = ExitCode(68)
    static let sessionFile = ExitCode(69)
    static let interrupted = ExitCode(130)

    /// The exit code for a library status.
    init(_ status: Status) {
        switch status {
        case .ok: self = .success
        case .invalidArgument, .invalidUTF8, .bufferTooSmall: self = .validationFailure
        case .badWeights, .missingTensor, .tensorMismatch, .badConfig, .unsupported, .badTokenizer: self = .model
        case .io: self = .io
        case .badImage, .imageTooLarge: self = .image
        case .contextFull: self = .contextFull
        case .badSessionFile, .sessionMismatch: self = .sessionFile
        case .cancelled: self = .interrupted
        case .outOfMemory, .internal: self = .failure
        }
    }
}

extension LlavaError {
    /// The one line `llavauhd` prints for a failure: `llavauhd: <status name>: <message>`.
    var commandLine: String { "llavauhd: \(status.name): \(message)\n" }
}
