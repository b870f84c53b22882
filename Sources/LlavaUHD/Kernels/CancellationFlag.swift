import CLlavaUHD

/// A flag that any thread may raise to stop a computation running on another thread (for
/// example a generation loop, from a UI thread or a C caller). Cheap to poll; the computation
/// checks it between units of work (layers, tokens) and stops with `.cancelled`.
///
/// Raising it is sticky: it stays raised until `reset()`.
public final class CancellationFlag: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Int32>

    public init() {
        storage = .allocate(capacity: 1)
        storage.initialize(to: 0)
    }

    deinit { storage.deallocate() }

    /// Asks the computation polling this flag to stop.
    public func cancel() { luhd_flag_store(storage, 1) }

    /// Lowers the flag so the next computation runs.
    public func reset() { luhd_flag_store(storage, 0) }

    /// True once `cancel()` was called (and `reset()` was not called since).
    public var isCancelled: Bool { luhd_flag_load(storage) != 0 }
}

extension ComputeContext {
    /// This context, also stopping when `flag` is raised (checked before the context's own
    /// abort callback).
    public func cancellable(by flag: CancellationFlag?) -> ComputeContext {
        guard let flag else { return self }
        let outer = shouldAbort
        return ComputeContext(threads: threads, shouldAbort: { flag.isCancelled || (outer?() ?? false) })
    }
}
