import ArgumentParser
import LlavaUHD
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C handling. SIGINT is blocked in every thread and received by one watcher thread with
/// `sigwait`, so the reaction is ordinary code rather than a signal handler: while an answer is
/// running (`whileAnswering`), the first Ctrl-C raises the session's cancellation flag (the
/// answer stops with `.cancelled` and the session stays usable); a second Ctrl-C, or one at any
/// other time, ends the process with exit code 130.
///
/// `install()` must run before the model is loaded: threads inherit the signal mask of the
/// thread that creates them, so the compute and BLAS threads never see SIGINT.
final class InterruptHandler: Sendable {
    static let shared = InterruptHandler()

    private struct State {
        var installed = false
        /// The flag of the answer in progress, nil between answers.
        var target: CancellationFlag?
        /// Whether the answer in progress was already cancelled.
        var cancelled = false
    }
    private let state = Mutex(State())

    /// Blocks SIGINT in the calling thread (and so in every thread it creates) and starts the
    /// watcher thread. Safe to call more than once.
    func install() {
        let first = state.withLock { s in
            defer { s.installed = true }
            return !s.installed
        }
        guard first else { return }
        var set = Self.interruptSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            Unmanaged<InterruptHandler>.fromOpaque(argument).takeRetainedValue().watch()
            return nil
        }, box)
        if created == 0 {
            pthread_detach(thread)
        } else {
            // No watcher: fall back to the default behaviour (Ctrl-C ends the process).
            Unmanaged<InterruptHandler>.fromOpaque(box).release()
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
        }
    }

    /// Runs `body` with Ctrl-C cancelling `flag`.
    func whileAnswering<T>(_ flag: CancellationFlag, _ body: () throws -> T) rethrows -> T {
        state.withLock { s in
            s.target = flag
            s.cancelled = false
        }
        defer { state.withLock { s in s.target = nil } }
        return try body()
    }

    /// Whether Ctrl-C was pressed during the current `whileAnswering` (for loops of answers,
    /// to stop between two of them).
    var interrupted: Bool { state.withLock { $0.cancelled } }

    private static func interruptSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        return set
    }

    private func watch() {
        var set = Self.interruptSet()
        while true {
            var signal: Int32 = 0
            guard sigwait(&set, &signal) == 0 else { continue }
            let flag: CancellationFlag? = state.withLock { s in
                guard let target = s.target, !s.cancelled else { return nil }
                s.cancelled = true
                return target
            }
            if let flag {
                flag.cancel()
            } else {
                Console.err("\n")
                _exit(ExitCode.interrupted.rawValue)
            }
        }
    }
}

