#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(t)` on `count` new POSIX threads at once and waits for all of them.
package func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job: @unchecked Sendable {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var threads: [pthread_t] = []
    for t in 0..<count {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(body, t)).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, job)
        precondition(rc == 0, "pthread_create failed")
        threads.append(thread)
    }
    for t in threads { pthread_join(t, nil) }
}
