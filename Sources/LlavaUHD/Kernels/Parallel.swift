import CLlavaUHD

/// How much of the machine a computation may use, and how it can be stopped.
///
/// Every stage takes one; results never depend on `threads` (work is split so that each task
/// writes its own outputs with a fixed reduction order).
public struct ComputeContext: @unchecked Sendable {
    /// Threads a data-parallel loop may use, the calling thread included (at least 1).
    public var threads: Int
    /// Polled between units of work (layers, slices, tokens); returning true stops the
    /// computation with `.cancelled`.
    public var shouldAbort: (() -> Bool)?
    /// Where stages that support it time their parts (benchmarks; nil: not timed).
    package var stageClock: StageClock?
    /// Working memory the vision path may reuse from earlier calls (the model's, set by
    /// `LlavaModel.computeContext`; nil: each call allocates its own). See `VisionScratch`.
    package var visionScratch: VisionScratch?

    public init(threads: Int = ComputeContext.defaultThreads, shouldAbort: (() -> Bool)? = nil) {
        self.threads = max(1, threads)
        self.shouldAbort = shouldAbort
    }

    /// The number of online CPUs.
    public static var defaultThreads: Int { Int(luhd_cpu_count()) }

    /// Throws `.cancelled` when the abort callback asks to stop.
    public func checkAbort(_ what: @autoclosure () -> String) throws(LlavaError) {
        if let shouldAbort, shouldAbort() { throw LlavaError(.cancelled, "\(what()) cancelled (abort callback or cancellation request)") }
    }
}

/// Calls `body(i)` exactly once for every `i` in `0..<count` on up to `threads` threads (the
/// caller included) and returns when all calls are done. Each call must write memory no other
/// call writes (and compute it in a fixed order), so that results do not depend on `threads`.
///
/// Runs on the process-wide pool of Sources/CLlavaUHD/thread_pool.c, one loop at a time: a
/// call made while another thread's loop holds the pool runs inline on the calling thread, and
/// so does a call from inside a task (nested loops), so loops never wait for each other.
package func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    guard count > 0 else { return }
    if threads <= 1 || count == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { escapable in
        var closure = escapable
        withUnsafeMutablePointer(to: &closure) { p in
            luhd_parallel_for(count, Int32(clamping: threads), { ctx, i in  // the pool caps workers anyway
                ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
            }, p)
        }
    }
}

/// Splits `0..<count` into at most `parts` contiguous ranges of nearly equal size.
package func chunks(_ count: Int, parts: Int) -> [Range<Int>] {
    let p = max(1, min(parts, count))
    return (0..<p).map { i in (count * i / p)..<(count * (i + 1) / p) }
}

/// A pointer that may cross into parallel tasks; the tasks promise to write disjoint parts.
package struct SendablePointer<T>: @unchecked Sendable {
    package let p: UnsafeMutablePointer<T>
    package init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}
