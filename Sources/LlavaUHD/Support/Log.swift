#if canImport(Glibc)
import Glibc
#endif
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

    private static let state = Mutex<(sink: Sink?, minimum: LogLevel)>((Log.stderrSink, .warning))

    /// Writes to file descriptor 2 with a "llavauhd: " prefix.
    public static let stderrSink: Sink = { level, message in
        let line = "llavauhd: \(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    /// Replaces the sink (nil silences the library) and the lowest level passed to it.
    public static func configure(sink: Sink?, minimum: LogLevel) {
        state.withLock { $0 = (sink, minimum) }
    }

    public static func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        let (sink, minimum) = state.withLock { ($0.sink, $0.minimum) }
        guard let sink, level >= minimum else { return }
        sink(level, message())
    }

    public static func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
    public static func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public static func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public static func error(_ m: @autoclosure () -> String) { log(.error, m()) }
}
