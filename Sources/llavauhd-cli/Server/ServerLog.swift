import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif

/// The server's progress and timing log: one line per event on standard error, prefixed with
/// the UTC time and the request id.
enum ServerLog {
    static func line(_ requestID: String, _ text: String) {
        Console.err("\(timestamp()) \(requestID.isEmpty ? "-" : requestID) \(text)\n")
    }

    /// A request's progress through its stages.
    static func stage(_ requestID: String, _ stage: ChatStage) {
        switch stage {
        case .image(let index, let count, let step): line(requestID, "image \(index + 1)/\(count): \(step)")
        case .prefill(let positions): line(requestID, "prefill: \(positions) positions")
        case .decoding: line(requestID, "decoding")
        }
    }

    /// `2026-12-06T04:05:06.123Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = Int(ts.tv_nsec / 1_000_000)
        let millis = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }
}
