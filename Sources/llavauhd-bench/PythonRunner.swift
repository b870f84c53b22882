#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// Running the committed comparison scripts (scripts/bench/*.py) as subprocesses.
enum PythonRunner {
    /// The Python to use: env `LLAVAUHD_BENCH_PYTHON`, default `python3`.
    static var python: String { environment("LLAVAUHD_BENCH_PYTHON") ?? "python3" }

    /// True when `python -c 'import <module>'` works (cached per module).
    static func hasModule(_ module: String) -> Bool {
        if let known = modules[module] { return known }
        let ok = system("\(python) -c 'import \(module)' >/dev/null 2>&1") == 0
        modules[module] = ok
        return ok
    }
    nonisolated(unsafe) private static var modules: [String: Bool] = [:]

    /// Runs `python script args…` (stderr to the terminal) and parses the last stdout line that
    /// starts with "{" as JSON; nil when the command fails or prints none.
    static func json(_ script: String, _ arguments: [String]) -> JSONValue? {
        runJSON(([python, script] + arguments).map(shellQuoted).joined(separator: " "))
    }
}

/// The value of environment variable `name`, nil when unset or empty.
func environment(_ name: String) -> String? {
    guard let v = getenv(name), v[0] != 0 else { return nil }
    return String(cString: v)
}

/// `s` quoted for /bin/sh.
func shellQuoted(_ s: String) -> String {
    "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

/// Runs a shell command and returns the last line of its standard output that starts with "{",
/// parsed as JSON; nil when the command fails or prints none.
func runJSON(_ command: String) -> JSONValue? {
    guard let output = runCommand(command) else { return nil }
    guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else { return nil }
    return try? JSONValue.parse(Array(line.utf8))
}

/// The standard output of a shell command, nil when it exits with a failure.
func runCommand(_ command: String) -> String? {
    guard let pipe = popen(command, "r") else { return nil }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&buffer, 1, buffer.count, pipe)
        if n <= 0 { break }
        output += buffer[0..<n]
    }
    return pclose(pipe) == 0 ? String(decoding: output, as: UTF8.self) : nil
}
