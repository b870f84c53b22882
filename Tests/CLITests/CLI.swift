import LlavaUHD
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The `llavauhd` executable of the current build and the shared test inputs.
enum CLI {
    /// `$LLAVAUHD_CLI` when set, else `llavauhd-cli` next to the running test binary
    /// (`<scratch>/<configuration>/llavauhdPackageTests.xctest`): the product SwiftPM built in
    /// the same `swift build --build-tests` / `swift test` run.
    static let executable: String = {
        if let env = getenv("LLAVAUHD_CLI") { return String(cString: env) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "llavauhd-cli" }
        let me = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(me[..<(me.lastIndex(of: "/") ?? me.startIndex)]) + "/llavauhd-cli"
    }()

    /// Runs `llavauhd ARGUMENTS` to completion.
    static func run(_ arguments: [String], stdinPath: String = "/dev/null", scratch: TemporaryDirectory) throws -> ProcessResult {
        guard fileExists(executable) else {
            throw SubprocessError(message: "no llavauhd-cli at \(executable): build it (swift build --build-tests) or set LLAVAUHD_CLI")
        }
        return try runProcess(executable, arguments, stdinPath: stdinPath, scratch: scratch)
    }

    /// Starts `llavauhd ARGUMENTS` without waiting.
    static func start(_ arguments: [String], scratch: TemporaryDirectory) throws -> ChildProcess {
        guard fileExists(executable) else { throw SubprocessError(message: "no llavauhd-cli at \(executable)") }
        return try ChildProcess(executable, arguments, scratch: scratch)
    }

    /// The tiny model of the `small-noslice` case, loaded once for the in-process references.
    static let smallModel = Result { () throws(LlavaError) in try LlavaModel(path: Fixtures.model("small-noslice")) }

    /// A real photo of the assets folder.
    static func photo(_ name: String) -> String { Fixtures.assets + "/images/" + name }
}

/// The lines of `text` (without their newlines; a last line without one is kept).
func lines(_ text: String) -> [String] {
    var out = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if out.last == "" { out.removeLast() }
    return out
}

/// `text` without leading and trailing ASCII whitespace (what Python's strip removes from the
/// tiny models' answers).
func strippedASCII(_ text: String) -> String {
    let bytes = Array(text.utf8)
    let isSpace: (UInt8) -> Bool = { $0 == 0x20 || (0x09...0x0D).contains($0) }
    guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else {
        return ""
    }
    return String(decoding: bytes[first...last], as: UTF8.self)
}
