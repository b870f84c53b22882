#if canImport(Glibc)
import Glibc
#endif

/// Standard output and standard error, written with `write(2)` (no stdio buffering, so the
/// streamed answer and the progress lines appear at once and in order).
enum Console {
    /// Whether standard error is a terminal (progress then rewrites one status line).
    static let stderrIsTerminal = isatty(2) != 0
    /// Whether standard input is a terminal (the chat loop then shows a prompt).
    static let stdinIsTerminal = isatty(0) != 0

    /// Writes `text` to standard output.
    static func out(_ text: String) { writeAll(1, text) }

    /// Writes `text` to standard error.
    static func err(_ text: String) { writeAll(2, text) }

    /// Writes every byte of `text` to `fd`, retrying short writes and EINTR. Gives up silently
    /// on other errors (a closed pipe), as `print` would.
    static func writeAll(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

/// `value` with `digits` digits after the point (no Foundation `String(format:)`).
func fixed(_ value: Double, _ digits: Int = 2) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let negative = value < 0
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9.0e15 else { return "\(value)" }
    let whole = Int(scaled)
    let integerPart = whole / Int(scale), fraction = whole % Int(scale)
    var out = (negative && whole != 0 ? "-" : "") + String(integerPart)
    if digits > 0 {
        let f = String(fraction)
        out += "." + String(repeating: "0", count: digits - f.count) + f
    }
    return out
}
