import Hummingbird
import LlavaUHD

/// One chat completion on a session of the pool, computed on a thread of its own: the request's
/// earlier turns become the session's conversation (`ChatSession.setConversation`, so what the
/// session's KV cache already holds is not recomputed), then the question is answered with
/// `ChatSession.chat`. The slot goes back to the pool when the computation ends, whatever the
/// client does meanwhile.
struct CompletionJob: Sendable {
    let id: String
    let label: String
    let modelID: String
    let request: ChatCompletionRequest
    let historyImages: [RGBImage]
    let questionImages: [RGBImage]
    let slot: SessionPool.Slot
    let pool: SessionPool
    let control: RequestControl
    let created = Int(wallClockSeconds())

    /// What the computation reports, on its thread.
    enum Event: Sendable {
        case text(String)
        case finished(Result<Outcome, APIError>)
        /// No news; lets a streaming response notice a client that went away.
        case heartbeat
    }

    struct Outcome: Sendable {
        var reply: ChatReply
        /// Encoding the earlier turns' images.
        var historyTimings: ChatTimings
    }

    /// A client that closed its connection (nginx's code; only logged, nobody reads it).
    static let clientGone = APIError(status: HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"),
                                     message: "the client closed the connection", type: "client_closed")

    // MARK: - Computation

    /// Starts the computation; `onEvent` is called on its thread, `.finished` last.
    func start(onEvent: @escaping @Sendable (Event) -> Void) throws(APIError) {
        let start = monotonicSeconds()
        do {
            try BlockingThread.start { [self] in
                let outcome = compute { onEvent(.text($0)) }
                control.detach()
                log(outcome, seconds: monotonicSeconds() - start)
                onEvent(.finished(outcome))
                let (pool, slot) = (pool, slot)
                Task { await pool.release(slot) }
            }
        } catch {
            control.detach()
            let (pool, slot) = (pool, slot)
            Task { await pool.release(slot) }
            throw error
        }
    }

    private func compute(onText: (String) -> Void) -> Result<Outcome, APIError> {
        let abort = slot.abort
        do {
            let session = try pool.session(of: slot, systemPrompt: request.systemPrompt)
            let historyTimings = try session.setConversation(request.history, images: historyImages)
            let reply = try session.chat(request.question, images: questionImages, parameters: request.parameters) { piece in
                onText(piece)
                return !abort.isCancelled
            }
            if reply.stopReason == .callback { return .failure(stopped()) }
            return .success(Outcome(reply: reply, historyTimings: historyTimings))
        } catch {
            return .failure(error.status == .cancelled ? stopped() : APIError(error))
        }
    }

    private func stopped() -> APIError {
        control.timedOut.isCancelled ? .timedOut : Self.clientGone
    }

    private func log(_ outcome: Result<Outcome, APIError>, seconds: Double) {
        switch outcome {
        case .success(let o):
            let r = o.reply, t = r.timings
            let encoded = t.encodedImages + o.historyTimings.encodedImages, cached = t.cachedImages + o.historyTimings.cachedImages
            let rate = t.decode > 0 ? " (\(fixed(Double(r.tokens.count) / t.decode, 1)) tokens/s)" : ""
            ServerLog.line(label, "200 \(Self.finishReason(r.stopReason)): prompt \(r.promptPositions) positions "
                           + "(\(r.reusedPositions) reused), \(r.tokens.count) tokens, images \(encoded) encoded / \(cached) cached; "
                           + "image \(fixed(t.imageEncoding + o.historyTimings.imageEncoding)) s, prefill \(fixed(t.prefill)) s, "
                           + "decode \(fixed(t.decode)) s\(rate), total \(fixed(seconds)) s")
        case .failure(let e):
            ServerLog.line(label, "\(e.status.code) \(e.message)")
        }
    }

    // MARK: - Responses

    /// The whole answer as one `chat.completion` object.
    func response() async throws(APIError) -> Response {
        let outcome: Result<Outcome, APIError> = await withCheckedContinuation { continuation in
            do throws(APIError) {
                try start { event in
                    if case .finished(let result) = event { continuation.resume(returning: result) }
                }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        let o = try outcome.get()
        return CompletionService.json(.ok, .object(header("chat.completion") + [
            ("choices", .array([.object([
                ("index", .int(0)),
                ("message", .object([("role", .string("assistant")), ("content", .string(o.reply.text))])),
                ("logprobs", .null),
                ("finish_reason", .string(Self.finishReason(o.reply.stopReason))),
            ])])),
            ("usage", usage(o.reply)),
        ]))
    }

    /// The answer as server-sent events of `chat.completion.chunk` objects, ending with
    /// `data: [DONE]`. A client that goes away stops the computation at its next piece or
    /// heartbeat (every second).
    func streamingResponse() throws(APIError) -> Response {
        let (events, feed) = AsyncStream<Event>.makeStream()
        control.stopWatchingInbound()
        try start { event in
            feed.yield(event)
            if case .finished = event { feed.finish() }
        }
        let heartbeat = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                feed.yield(.heartbeat)
            }
        }
        let job = self
        let body = ResponseBody { writer in
            defer { heartbeat.cancel() }
            do {
                try await writer.write(job.event(job.chunk(delta: [("role", .string("assistant")), ("content", .string(""))])))
                for await event in events {
                    switch event {
                    case .heartbeat:
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    case .text(let piece):
                        try await writer.write(job.event(job.chunk(delta: [("content", .string(piece))])))
                    case .finished(.success(let o)):
                        try await writer.write(job.event(job.chunk(delta: [], finishReason: Self.finishReason(o.reply.stopReason))))
                        if job.request.includeUsage {
                            try await writer.write(job.event(.object(job.header("chat.completion.chunk")
                                + [("choices", .array([])), ("usage", job.usage(o.reply))])))
                        }
                    case .finished(.failure(let error)):
                        try await writer.write(job.event(error.body))
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                job.control.clientGone()
                throw error
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    private func header(_ object: String) -> [(String, JSONValue)] {
        [("id", .string(id)), ("object", .string(object)), ("created", .int(created)), ("model", .string(modelID))]
    }

    private func chunk(delta: [(String, JSONValue)], finishReason: String? = nil) -> JSONValue {
        .object(header("chat.completion.chunk") + [("choices", .array([.object([
            ("index", .int(0)), ("delta", .object(delta)), ("logprobs", .null),
            ("finish_reason", finishReason.map(JSONValue.string) ?? .null),
        ])]))])
    }

    private func event(_ value: JSONValue) -> ByteBuffer {
        ByteBuffer(string: "data: " + JSONWriter.value(value) + "\n\n")
    }

    private func usage(_ reply: ChatReply) -> JSONValue {
        .object([("prompt_tokens", .int(reply.promptPositions)), ("completion_tokens", .int(reply.tokens.count)),
                 ("total_tokens", .int(reply.promptPositions + reply.tokens.count))])
    }

    /// OpenAI's `finish_reason`: "stop" (end of sequence, a stop string) or "length".
    static func finishReason(_ reason: ChatReply.StopReason) -> String {
        switch reason {
        case .endOfSequence, .stopString, .callback: return "stop"
        case .maxNewTokens, .contextFull: return "length"
        }
    }
}
