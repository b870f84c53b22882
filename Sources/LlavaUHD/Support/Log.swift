#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import Synchronization

/// Severity of a log message; raw values are the C ABI's `luhd_log_level`.
public enum LogLevel: Int32, Sendable, Comparable {
    case debug = 0, info = 1, warning = 2, error = 3
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// The library's log sink. By default, warnings and errors go to standard error; a host can
/// install its own sink (`luhd_log_set`) or silence the library.
public enum Log {
    public typealias Sink = @Sendable (LogLevel, String) -> Void

    /// A sink and the number of deliveries to it in progress: `configure` waits until a
    /// replaced sink has no delivery left, so a host may free what its callback uses.
    private final class Slot: Sendable {
        let sink: Sink
        let active = Atomic<Int>(0)
        init(_ sink: @escaping Sink) { self.sink = sink }
    }

    private static let state = Mutex<(slot: Slot?, minimum: LogLevel)>((Slot(Log.stderrSink), .warning))

    /// Writes to file descriptor 2 with a "llavauhd: " prefix.
    public static let stderrSink: Sink = { level, message in
        let line = "llavauhd: \(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    /// Replaces the sink (nil silences the library) and the lowest level passed to it. When it
    /// returns, the previous sink is not running on any thread and will not be called again.
    /// Returns false, changing nothing, when called from inside a sink (it would wait for itself).
    @discardableResult
    public static func configure(sink: Sink?, minimum: LogLevel) -> Bool {
        guard luhd_log_delivery_depth() == 0 else { return false }
        let previous = state.withLock { state in
            defer { state = (sink.map(Slot.init), minimum) }
            return state.slot
        }
        guard let previous else { return true }
        while previous.active.load(ordering: .acquiring) > 0 { sched_yield() }
        return true
    }

    public static func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        // A message produced by a library call made from inside a sink is dropped: delivering it
        // would call the sink from itself, without end if the sink's call fails every time.
        guard luhd_log_delivery_depth() == 0 else { return }
        // The delivery is counted under the lock, so a `configure` that swaps the sink after
        // this point sees it and waits for it.
        let slot = state.withLock { state -> Slot? in
            guard let slot = state.slot, level >= state.minimum else { return nil }
            slot.active.add(1, ordering: .relaxed)
            return slot
        }
        guard let slot else { return }
        luhd_log_delivery_adjust(1)
        slot.sink(level, message())
        luhd_log_delivery_adjust(-1)
        slot.active.subtract(1, ordering: .releasing)
    }

    public static func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
    public static func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public static func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public static func error(_ m: @autoclosure () -> String) { log(.error, m()) }
}
