import HTTPTypes
import Hummingbird
import LlavaUHD
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The handlers of `llavauhd serve`: `/v1/chat/completions`, `/v1/models`, `/health`.
final class CompletionService: Sendable {
    let pool: SessionPool
    /// The model id clients see (`--alias`, else the model directory's name).
    let modelID: String
    let created: Int
    let limits: ServerLimits
    let images: ImageSource
    /// Requests served so far, for ids in the log.
    private let served = Atomic<Int>(0)

    init(pool: SessionPool, modelID: String, limits: ServerLimits, images: ImageSource) {
        self.pool = pool
        self.modelID = modelID
        self.limits = limits
        self.images = images
        created = Int(wallClockSeconds())
    }

    /// One endpoint: its method, path and handler.
    struct Route: Sendable {
        let method: HTTPRequest.Method
        let path: String
        let handler: @Sendable (Request) async -> Response
    }

    /// Every endpoint of the server.
    var routes: [Route] {
        [Route(method: .get, path: "health") { _ in await self.health() },
         Route(method: .get, path: "v1/health") { _ in await self.health() },
         Route(method: .get, path: "v1/models") { _ in self.models() },
         Route(method: .post, path: "v1/chat/completions") { request in await self.chatCompletion(request) }]
    }

    /// Adds the routes, and OpenAI-shaped 404 and 405 answers for requests none of them takes.
    func addRoutes(to router: Router<BasicRequestContext>) {
        let routes = routes
        router.add(middleware: UnknownRouteMiddleware(routes: routes))
        for route in routes {
            router.on(RouterPath(route.path), method: route.method) { request, _ in await route.handler(request) }
        }
    }

    func health() async -> Response {
        let (busy, queued) = await pool.load
        return Self.json(.ok, .object([("status", .string("ok")), ("model", .string(modelID)),
                                       ("sessions", .int(pool.slots.count)), ("busy", .int(busy)),
                                       ("queued", .int(queued))]))
    }

    func models() -> Response {
        Self.json(.ok, .object([("object", .string("list")), ("data", .array([.object([
            ("id", .string(modelID)), ("object", .string("model")), ("created", .int(created)),
            ("owned_by", .string("llavauhd")),
        ])]))]))
    }

    // MARK: - Chat completions

    /// One chat completion; every failure is an OpenAI-shaped JSON error. The response says
    /// `Connection: close`: Hummingbird closes the connection after a request whose inbound
    /// stream it watched (`consumeWithInboundCloseHandler`), and a client told so opens a new
    /// one instead of racing that close with its next request.
    func chatCompletion(_ request: Request) async -> Response {
        var response = await respond(request)
        response.headers[.connection] = "close"
        return response
    }

    private func respond(_ request: Request) async -> Response {
        let number = served.wrappingAdd(1, ordering: .relaxed).newValue
        let id = "chatcmpl-" + ShortUUID.random()
        let label = "#\(number) \(id)"
        let control = RequestControl(start: monotonicSeconds(), timeout: limits.timeoutSeconds)
        do {
            return try await request.body.consumeWithInboundCloseHandler({ body in
                try await self.answer(body: body, id: id, label: label, control: control)
            }, onInboundClosed: {
                control.inboundClosed()
            })
        } catch let error as APIError {
            ServerLog.line(label, "\(error.status.code) \(error.message)")
            return Self.json(error.status, error.body)
        } catch {
            ServerLog.line(label, "500 \(error)")
            return Self.json(.internalServerError,
                             APIError(status: .internalServerError, message: "\(error)", type: "server_error").body)
        }
    }

    private func answer(body: RequestBody, id: String, label: String, control: RequestControl) async throws -> Response {
        let bytes = try await Self.collect(body, upTo: limits.maxBodyBytes)
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch { throw APIError.invalid("the body is not JSON: \(error)") }
        let request = try ChatCompletionRequest(json: json, defaultMaxTokens: limits.defaultMaxTokens)
        let urls = request.historyImageURLs + request.questionImageURLs
        guard urls.count <= limits.maxImages else {
            throw APIError.invalid("\(urls.count) images in the request; the server takes at most \(limits.maxImages) "
                                   + "(--max-images)", param: "messages", code: "too_many_images")
        }
        guard urls.isEmpty || pool.model.hasVision else {
            throw APIError.invalid("the model '\(modelID)' is a text-only LLM and cannot read images", param: "messages",
                                   code: "images_not_supported")
        }
        ServerLog.line(label, "request: \(request.history.count / 2 + 1) user turn(s), \(urls.count) image(s), "
                       + "max_tokens \(request.parameters.generation.maxNewTokens)\(request.stream ? ", streaming" : "")")

        let queued = monotonicSeconds()
        let slot = try await pool.acquire(requestID: label, timeout: control.remaining)
        let waited = monotonicSeconds() - queued
        if waited > 0.001 { ServerLog.line(label, "waited \(fixed(waited)) s for a session") }
        // Images are decoded once the request has a session, so that decoded pixels (up to
        // --max-images x --max-image-pixels x 3 bytes per request) are held by at most --parallel
        // requests, not by every connection and every queued request at once.
        let source = images
        let decoded: [RGBImage]
        do {
            decoded = try await BlockingThread.run { () -> Result<[RGBImage], APIError> in
                Result { () throws(APIError) in
                    try urls.enumerated().map { (i, url) throws(APIError) in try source.load(url, param: "image \(i + 1)") }
                }
            }
        } catch {
            await pool.release(slot)
            throw error
        }
        let historyImages = Array(decoded.prefix(request.historyImageURLs.count))
        let questionImages = Array(decoded.dropFirst(request.historyImageURLs.count))
        control.attach(slot.abort)

        let job = CompletionJob(id: id, label: label, modelID: modelID, request: request, historyImages: historyImages,
                                questionImages: questionImages, slot: slot, pool: pool, control: control)
        return request.stream ? try job.streamingResponse() : try await job.response()
    }

    /// The body's bytes, refusing more than `limit` (413).
    static func collect(_ body: RequestBody, upTo limit: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw APIError(status: .contentTooLarge, message: "the request body is larger than \(limit) bytes (--max-body-bytes)",
                               type: "invalid_request_error", code: "request_too_large")
            }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: JSONWriter.value(value))))
    }
}

/// What stops one request: the client going away or its deadline. Shared by the handler, the
/// timer and the compute thread.
final class RequestControl: Sendable {
    let start: Double
    let timeout: Double
    /// The client closed the connection.
    let gone = CancellationFlag()
    /// The deadline passed.
    let timedOut = CancellationFlag()
    /// The abort flag of the session slot serving the request, once it has one.
    private let slotAbort = Mutex<CancellationFlag?>(nil)
    /// The deadline's timer, once armed.
    private let timer = Mutex<Task<Void, any Error>?>(nil)

    init(start: Double, timeout: Double) {
        self.start = start
        self.timeout = timeout
    }

    /// Seconds left before the deadline (at least a millisecond).
    var remaining: Double { max(0.001, start + timeout - monotonicSeconds()) }

    /// Whether the end of the request's inbound stream means the client went away: true until
    /// a streaming response takes over (Hummingbird reports the inbound stream closed once the
    /// handler has returned; from then on a failed write tells that the client is gone).
    private let watchingInbound = Mutex<Bool>(true)

    func clientGone() {
        gone.cancel()
        slotAbort.withLock { $0?.cancel() }
    }

    func inboundClosed() {
        if watchingInbound.withLock({ $0 }) { clientGone() }
    }

    func stopWatchingInbound() {
        watchingInbound.withLock { $0 = false }
    }

    /// Links the request to its slot, and arms the deadline on it.
    func attach(_ abort: CancellationFlag) {
        slotAbort.withLock { $0 = abort }
        if gone.isCancelled { abort.cancel() }
        let wait = remaining
        let task = Task { [weak self] in
            try await Task.sleep(for: .seconds(wait))
            guard let self else { return }
            self.timedOut.cancel()
            self.slotAbort.withLock { $0?.cancel() }
        }
        timer.withLock { $0 = task }
    }

    /// Detaches from the slot once the computation is over, so a late timer or disconnect does
    /// not stop the slot's next request.
    func detach() {
        slotAbort.withLock { $0 = nil }
        timer.withLock { $0?.cancel() }
    }
}

/// Seconds since the Unix epoch.
func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
