import CLlavaUHD

/// A C callback and its user data, callable from any thread.
private struct CLogSink: @unchecked Sendable {
    let callback: luhd_log_callback
    let userData: UnsafeMutableRawPointer?
}

@_cdecl("luhd_log_set")
public func luhd_log_set(_ callback: luhd_log_callback?, _ userData: UnsafeMutableRawPointer?, _ minLevel: luhd_log_level) {
    // Any value, even one outside the enum (a C caller may pass (luhd_log_level)-1), is read
    // without trapping: above LUHD_LOG_ERROR silences the library.
    let raw = Int64(minLevel.rawValue)
    guard raw <= Int64(LogLevel.error.rawValue) else {
        Log.configure(sink: nil, minimum: .error)
        return
    }
    let minimum = LogLevel(rawValue: Int32(max(0, raw))) ?? .warning
    guard let callback else {
        Log.configure(sink: Log.stderrSink, minimum: minimum)
        return
    }
    let sink = CLogSink(callback: callback, userData: userData)
    Log.configure(sink: { level, message in
        message.withCString { sink.callback(luhd_log_level(rawValue: UInt32(level.rawValue)), $0, sink.userData) }
    }, minimum: minimum)
}
