import HTTPTypes
import LlavaUHD

/// A failed request as OpenAI's API reports it: an HTTP status and the body
/// `{"error": {"message", "type", "param", "code"}}`, so OpenAI clients raise their usual
/// exception classes (400 BadRequestError, 413, 503 InternalServerError...).
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    /// OpenAI's error type: "invalid_request_error", "server_error", "timeout_error"...
    var type: String
    /// A short machine-readable cause, e.g. "context_length_exceeded".
    var code: String?
    /// The request field at fault, when there is one.
    var param: String?

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", code: code, param: param)
    }

    static func busy(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, message: message, type: "server_error", code: "server_busy")
    }

    static let timedOut = APIError(status: .requestTimeout, message: "the request took longer than the server's --timeout",
                                   type: "timeout_error", code: "timeout")

    /// A library failure: the caller's fault (4xx) when it comes from the request's content.
    init(_ error: LlavaError) {
        switch error.status {
        case .invalidArgument, .invalidUTF8, .badImage:
            self = .invalid(error.message, code: "\(error.status.name)".replacingSpaces)
        case .imageTooLarge:
            self = .invalid(error.message, code: "image_too_large")
        case .contextFull:
            self = .invalid(error.message, code: "context_length_exceeded")
        case .io:
            self = .invalid(error.message, code: "image_unreadable")
        default:
            self = APIError(status: .internalServerError, message: error.message, type: "server_error",
                            code: "\(error.status.name)".replacingSpaces)
        }
    }

    init(status: HTTPResponse.Status, message: String, type: String, code: String? = nil, param: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
    }

    /// The JSON body.
    var body: JSONValue {
        .object([("error", .object([
            ("message", .string(message)), ("type", .string(type)),
            ("param", param.map(JSONValue.string) ?? .null), ("code", code.map(JSONValue.string) ?? .null),
        ]))])
    }
}

extension String {
    /// "context full" → "context_full".
    fileprivate var replacingSpaces: String { String(map { $0 == " " || $0 == "-" ? "_" : $0 }) }
}
