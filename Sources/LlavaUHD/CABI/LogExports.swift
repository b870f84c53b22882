import CLlavaUHD

/// A C callback and its user data, callable from any thread.
private struct CLogSink: @unchecked Sendable {
    let callback: luhd_log_callback
    let userData: UnsafeMutableRawPointer?
}

@_cdecl("luhd_log_set")
public func luhd_log_set(_ callback: luhd_log_callback?, _ userData: UnsafeMutableRawPointer?,
                         _ minLevel: luhd_log_level) -> luhd_status {
    cCall("luhd_log_set") { () throws(LlavaError) in
        // Any value, even one outside the enum (a C caller may pass (luhd_log_level)-1), is read
        // without trapping: above LUHD_LOG_ERROR silences the library.
        let raw = Int64(minLevel.rawValue)
        let sink: Log.Sink?
        let minimum: LogLevel
        if raw > Int64(LogLevel.error.rawValue) {
            (sink, minimum) = (nil, .error)
        } else {
            minimum = LogLevel(rawValue: Int32(max(0, raw))) ?? .warning
            if let callback {
                let c = CLogSink(callback: callback, userData: userData)
                sink = { level, message in
                    message.withCString { c.callback(luhd_log_level(rawValue: UInt32(level.rawValue)), $0, c.userData) }
                }
            } else {
                sink = Log.stderrSink
            }
        }
        guard Log.configure(sink: sink, minimum: minimum) else {
            throw LlavaError(.invalidArgument, "called from inside a log callback, which it would wait for; nothing changed")
        }
    }
}
