#if canImport(Glibc)
import Glibc
#endif

/// Continuous batching of decode steps inside one decoder: sequences (sessions, each on its own
/// thread) that decode at the same time share each pass over the weights.
///
/// Decoding one position reads every weight once for one row of arithmetic, so it is bound by
/// memory bandwidth; B rows in one pass read the weights once for B tokens. A thread that needs
/// a one-position step submits it (`submit`) and either becomes the leader, which runs one
/// forward pass for the requests waiting at that moment (its own first, then the oldest, at most
/// `maxBatch`), or waits while another thread's pass computes its step. No thread waits for a
/// request that is not there: a leader gathers only what is already pending, plus, for at most
/// `maxGatherSeconds` (and a tenth of the last pass's duration), the sequences of the previous
/// pass that have not resubmitted yet (they are choosing their next token). A lone sequence
/// never waits.
///
/// Results are the single-sequence ones bit for bit: the pass computes every row with the
/// matrix-vector kernels (`MatMul.linear(…, rowwise: true)`, per-row sums independent of the
/// other rows), and attention, rotary embedding and norms per row, each against its own cache.
///
/// Cancellation and errors stay per request: the leader polls its own abort callback before
/// every layer; a waiting thread polls its own (on its own thread, every `pollSeconds`) and
/// withdraws a request that has not started, or flags one that is running, which the leader
/// drops from the pass before the next layer (its cache keeps the positions it had). The leader
/// finishes the pass for the others even when its own request is cancelled, so a cancelled
/// leader returns after at most one pass.
///
/// Re-entrancy: the leader runs its abort callback between layers of the pass, and a callback
/// may decode with another session of the same model (the C ABI allows any call on another
/// session there). That step cannot wait for the running pass, which waits for the callback:
/// a request submitted by the leading thread itself runs at once in a pass of its own.
package final class DecodeBatcher: @unchecked Sendable {
    /// One decode step: the embedding of one position (`hidden` floats) to append to `cache`.
    final class Request {
        let embedding: [Float]
        let cache: KVCache
        let wantsLogits: Bool
        /// The submitting thread's context (only that thread calls its abort callback).
        let context: ComputeContext
        // Guarded by the batcher's mutex.
        fileprivate var taken = false
        fileprivate var finished = false
        fileprivate var cancelRequested = false
        /// Written by the leader before `finished` is set.
        var result: Result<[Float], LlavaError> = .failure(LlavaError(.internal, "decode step not run"))

        init(embedding: [Float], cache: KVCache, wantsLogits: Bool, context: ComputeContext) {
            self.embedding = embedding
            self.cache = cache
            self.wantsLogits = wantsLogits
            self.context = context
        }
    }

    /// How a leader gathers requests before a pass.
    package enum GatherPolicy: Sendable {
        /// What is pending, plus the previous pass's sequences for a bounded time (see the type).
        case automatic
        /// Waits until `count` requests are pending or `timeout` seconds passed (tests use it to
        /// make batches of a known size).
        case waitFor(count: Int, timeout: Double)
    }

    /// Counters since the decoder was made.
    package struct Statistics: Sendable, Equatable {
        /// Forward passes run, and requests they computed (cancelled ones included).
        package var passes = 0
        package var requests = 0
        /// The largest batch.
        package var largestBatch = 0
    }

    /// Most requests in one pass (1: no batching).
    package let maxBatch: Int
    /// Longest wait of a leader for the previous pass's sequences.
    static let maxGatherSeconds = 0.002
    /// How often a waiting thread polls its abort callback.
    static let pollSeconds = 0.002
    /// Most requests per pass when the model's parameters do not say.
    package static let defaultMaxBatch = 8

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var pending: [Request] = []
    private var running = false
    /// The thread leading the running pass (meaningful while `running`).
    private var leaderThread = pthread_t()
    private var expected: Set<ObjectIdentifier> = []
    private var lastPassSeconds = 0.0
    private var policy = GatherPolicy.automatic
    private var stats = Statistics()

    init(maxBatch: Int) {
        self.maxBatch = max(1, maxBatch)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// The gathering policy of the next passes.
    package var gatherPolicy: GatherPolicy {
        get { locked { policy } }
        set { locked { policy = newValue } }
    }

    /// The counters so far.
    package var statistics: Statistics { locked { stats } }

    /// Runs `request` in a pass (this thread's, or another's) and returns its logits. `pass`
    /// computes a batch: it must set every request's `result`, calling `isCancelled` before each
    /// layer to drop the requests whose callers cancelled.
    func submit(_ request: Request, pass: ([Request], _ isCancelled: (Request) -> Bool) -> Void) throws(LlavaError) -> [Float] {
        pthread_mutex_lock(mutex)
        if running, pthread_equal(leaderThread, pthread_self()) != 0 {
            // Called from this thread's own pass (its abort callback): a pass of its own.
            pthread_mutex_unlock(mutex)
            pass([request]) { r in Self.aborts(r.context) }
            return try request.result.get()
        }
        pending.append(request)
        pthread_cond_broadcast(condition)
        while !request.finished {
            if !running {
                // Lead a pass. Our request is pending: whoever finished the last pass found it not taken.
                running = true
                leaderThread = pthread_self()
                let batch = gather(leader: request)
                pthread_mutex_unlock(mutex)
                let start = monotonicSeconds()
                pass(batch) { r in r === request ? Self.aborts(r.context) : self.locked { r.cancelRequested } }
                let seconds = monotonicSeconds() - start
                pthread_mutex_lock(mutex)
                for r in batch { r.finished = true }
                expected = Set(batch.compactMap { r in
                    if case .success = r.result { ObjectIdentifier(r.cache) } else { nil }
                })
                lastPassSeconds = seconds
                stats.passes += 1
                stats.requests += batch.count
                stats.largestBatch = max(stats.largestBatch, batch.count)
                running = false
                pthread_cond_broadcast(condition)
                break
            }
            wait(seconds: Self.pollSeconds)
            if request.finished || (!running && !request.taken) { continue }
            // Poll this thread's own abort callback, without the lock.
            pthread_mutex_unlock(mutex)
            let abort = Self.aborts(request.context)
            pthread_mutex_lock(mutex)
            guard abort, !request.finished else { continue }
            if request.taken {
                request.cancelRequested = true
            } else {
                pending.removeAll { $0 === request }
                pthread_mutex_unlock(mutex)
                throw Self.cancelled()
            }
        }
        pthread_mutex_unlock(mutex)
        return try request.result.get()
    }

    /// The error of a cancelled step.
    static func cancelled(layer: Int? = nil) -> LlavaError {
        LlavaError(.cancelled, "\(layer.map { "language model layer \($0)" } ?? "decoding") cancelled (abort callback or cancellation request)")
    }

    /// Takes the leader's request and the oldest others (at most `maxBatch`) out of `pending`,
    /// after the bounded wait for the previous pass's sequences. Called with the mutex held.
    private func gather(leader: Request) -> [Request] {
        let start = monotonicSeconds()
        switch policy {
        case .automatic:
            let window = min(Self.maxGatherSeconds, 0.1 * lastPassSeconds)
            while pending.count < maxBatch, window > 0 {
                let present = Set(pending.map { ObjectIdentifier($0.cache) })
                guard !expected.isSubset(of: present) else { break }
                let left = start + window - monotonicSeconds()
                guard left > 0 else { break }
                wait(seconds: left)
            }
        case .waitFor(let count, let timeout):
            while pending.count < min(count, maxBatch) {
                let left = start + timeout - monotonicSeconds()
                guard left > 0 else { break }
                wait(seconds: left)
            }
        }
        var batch = [leader]
        pending.removeAll { $0 === leader }
        let others = pending.prefix(maxBatch - 1)
        batch += others
        pending.removeFirst(others.count)
        for r in batch { r.taken = true }
        return batch
    }

    /// Waits on the condition for at most `seconds` (the mutex held).
    private func wait(seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanos = Int(now.tv_nsec) + Int(seconds * 1e9)
        var deadline = timespec(tv_sec: now.tv_sec + nanos / 1_000_000_000, tv_nsec: nanos % 1_000_000_000)
        _ = pthread_cond_timedwait(condition, mutex, &deadline)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    private static func aborts(_ context: ComputeContext) -> Bool { context.shouldAbort?() ?? false }
}
