import HTTPTypes
import Hummingbird

/// Answers requests no route takes in OpenAI's error shape (`APIError`) instead of
/// Hummingbird's empty 404: 405 with an `Allow` header when the path is one of the server's
/// routes and only the method is wrong, else 404. Added to the router before the routes, so it
/// also wraps the router's not-found responder (which throws `HTTPError(.notFound)` for both
/// cases).
struct UnknownRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods of each route, keyed by its path without leading or trailing slashes.
    let methods: [String: [HTTPRequest.Method]]

    init(routes: [CompletionService.Route]) {
        var methods: [String: [HTTPRequest.Method]] = [:]
        for route in routes { methods[Self.key(route.path), default: []].append(route.method) }
        self.methods = methods
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path, method = request.method.rawValue
            let answer: APIError
            var allow: String?
            if let allowed = methods[Self.key(path)], !allowed.contains(request.method) {
                let names = allowed.map(\.rawValue).joined(separator: ", ")
                allow = names
                answer = APIError(status: .methodNotAllowed, message: "\(method) is not allowed on \(path); use \(names)",
                                  type: "invalid_request_error", code: "method_not_allowed")
            } else {
                answer = APIError(status: .notFound, message: "no such endpoint: \(method) \(path)", type: "invalid_request_error",
                                  code: "unknown_url")
            }
            ServerLog.line("", "\(answer.status.code) \(method) \(path)")
            var response = CompletionService.json(answer.status, answer.body)
            if let allow { response.headers[.allow] = allow }
            return response
        }
    }

    /// `/v1/models/` → `v1/models`.
    private static func key(_ path: String) -> String {
        String(path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/"))
    }
}
