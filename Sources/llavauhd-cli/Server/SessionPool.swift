import LlavaUHD
import Synchronization

/// A bounded pool of chat sessions on one model: each session serves one request at a time;
/// requests beyond the pool wait in a queue of bounded length, in arrival order, and a request
/// that finds the queue full, or waits longer than its deadline, is refused (503).
///
/// A session keeps its KV cache between requests, so a client resending a conversation with one
/// more question recomputes only the new turn when it lands on the same session; free sessions
/// are handed out last-released first, which is the one a lone client used last.
actor SessionPool {
    /// One session of the pool, with what lets the server stop its current request.
    final class Slot: @unchecked Sendable {
        let index: Int
        /// Stops the current request (client gone, timeout): polled by the session's abort
        /// callback; reset when the slot is handed out.
        let abort = CancellationFlag()
        /// The request the slot serves now, for the progress log.
        let requestID = Mutex<String>("")
        /// The session, made on first use and made again when a request asks for another
        /// system prompt. Touched only by the request holding the slot.
        var session: ChatSession?

        init(index: Int) { self.index = index }
    }

    let model: LlavaModel
    let baseOptions: ChatSession.Options
    let queueLimit: Int
    let slots: [Slot]
    private var free: [Slot]
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Slot, any Error>)] = []
    private var nextWaiter: UInt64 = 0

    init(model: LlavaModel, size: Int, queueLimit: Int, options: ChatSession.Options) {
        self.model = model
        self.queueLimit = queueLimit
        slots = (0..<size).map(Slot.init)
        free = slots.reversed()
        baseOptions = options
    }

    /// Sessions in use, requests waiting.
    var load: (busy: Int, queued: Int) { (slots.count - free.count, waiters.count) }

    /// A free slot, waiting in the queue up to `timeout` seconds. Throws `APIError.busy` when
    /// the queue is full or the wait times out.
    func acquire(requestID: String, timeout: Double) async throws -> Slot {
        let slot: Slot
        if let ready = free.popLast() {
            slot = ready
        } else {
            guard waiters.count < queueLimit else {
                throw APIError.busy("all \(slots.count) sessions are busy and \(waiters.count) requests are waiting "
                                    + "(--parallel, --queue); retry later")
            }
            let id = nextWaiter
            nextWaiter += 1
            let expiry = Task { [weak self] in
                try await Task.sleep(for: .seconds(timeout))
                await self?.expire(id)
            }
            defer { expiry.cancel() }
            slot = try await withCheckedThrowingContinuation { waiters.append((id, $0)) }
        }
        slot.abort.reset()
        slot.requestID.withLock { $0 = requestID }
        return slot
    }

    /// Gives a slot back, to the longest-waiting request if any.
    func release(_ slot: Slot) {
        slot.requestID.withLock { $0 = "" }
        if waiters.isEmpty {
            free.append(slot)
        } else {
            waiters.removeFirst().continuation.resume(returning: slot)
        }
    }

    private func expire(_ id: UInt64) {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: i).continuation.resume(throwing: APIError.busy("no session became free within --timeout"))
    }

    /// The slot's session for `systemPrompt`, made (again) when it has none or another prompt.
    /// Called by the request holding the slot.
    nonisolated func session(of slot: Slot, systemPrompt: String?) throws(LlavaError) -> ChatSession {
        if let session = slot.session, session.options.systemPrompt == systemPrompt { return session }
        var options = baseOptions
        options.systemPrompt = systemPrompt
        let abort = slot.abort
        options.shouldAbort = { abort.isCancelled }
        options.onStage = { stage in ServerLog.stage(slot.requestID.withLock { $0 }, stage) }
        slot.session = nil
        let session = try ChatSession(model: model, options: options)
        slot.session = session
        return session
    }
}
