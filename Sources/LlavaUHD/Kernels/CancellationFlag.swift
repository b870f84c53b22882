import Synchronization

/// A flag that any thread may raise to stop a computation running on another thread (for
/// example a generation loop, from a UI thread or a C caller). Cheap to poll; the computation
/// checks it between units of work (layers, tokens) and stops with `.cancelled`.
///
/// Raising it is sticky: it stays raised until `reset()`.
public final class CancellationFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    public init() {}

    /// Asks the computation polling this flag to stop.
    public func cancel() { raised.store(true, ordering: .sequentiallyConsistent) }

    /// Lowers the flag so the next computation runs.
    public func reset() { raised.store(false, ordering: .sequentiallyConsistent) }

    /// True once `cancel()` was called (and `reset()` was not called since).
    public var isCancelled: Bool { raised.load(ordering: .sequentiallyConsistent) }
}

extension ComputeContext {
    /// This context (its stage clock and vision scratch kept), also stopping when `flag` is
    /// raised (checked before the context's own abort callback).
    public func cancellable(by flag: CancellationFlag?) -> ComputeContext {
        guard let flag else { return self }
        let outer = shouldAbort
        var context = self
        context.shouldAbort = { flag.isCancelled || (outer?() ?? false) }
        return context
    }
}
