import LlavaUHD
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended and what it wrote.
struct ProcessResult: CustomStringConvertible {
    /// The exit code, nil when a signal ended the process.
    var exitCode: Int32?
    /// The signal that ended the process, if one did.
    var signal: Int32?
    var stdout: String
    var stderr: String

    var description: String {
        "exit \(exitCode.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-")\n"
            + "stdout: \(stdout)\nstderr: \(stderr)"
    }
}

/// A child process started with `posix_spawn`: standard input from a file (or /dev/null),
/// standard output and error to files, the parent's environment.
final class ChildProcess {
    let pid: pid_t
    private let outPath: String
    private let errPath: String

    init(_ executable: String, _ arguments: [String], stdinPath: String = "/dev/null", scratch: TemporaryDirectory) throws {
        outPath = scratch.path + "/stdout-\(UInt32.random(in: 0...UInt32.max))"
        errPath = scratch.path + "/stderr-\(UInt32.random(in: 0...UInt32.max))"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child = pid_t()
        let rc = argv.withUnsafeBufferPointer { args in
            posix_spawn(&child, executable, &actions, nil, args.baseAddress!, environ)
        }
        guard rc == 0 else { throw SubprocessError(message: "posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Sends `signal` to the child.
    func send(_ signal: Int32) { kill(pid, signal) }

    /// Whether the child has exited (reaping it and keeping its status if so).
    func hasExited() throws -> Bool {
        if status != nil { return true }
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        if r == pid {
            status = raw
            return true
        }
        if r < 0 && errno != EINTR { throw SubprocessError(message: "waitpid: \(String(cString: strerror(errno)))") }
        return false
    }
    private var status: Int32?

    /// Waits for the child (killing it after `timeout` seconds) and reads its output.
    func wait(timeout: Double = 600) throws -> ProcessResult {
        let deadline = monotonicSeconds() + timeout
        while try !hasExited() {
            if monotonicSeconds() > deadline {
                kill(pid, SIGKILL)
                var raw: Int32 = 0
                _ = waitpid(pid, &raw, 0)
                throw SubprocessError(message: "the process did not finish within \(timeout) s")
            }
            usleep(5_000)
        }
        let raw = status ?? 0
        let signalled = raw & 0x7F
        return ProcessResult(exitCode: signalled == 0 ? (raw >> 8) & 0xFF : nil,
                             signal: signalled == 0 ? nil : signalled,
                             stdout: try readText(outPath), stderr: try readText(errPath))
    }
}

struct SubprocessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Runs `executable` to completion.
func runProcess(_ executable: String, _ arguments: [String], stdinPath: String = "/dev/null",
                scratch: TemporaryDirectory) throws -> ProcessResult {
    try ChildProcess(executable, arguments, stdinPath: stdinPath, scratch: scratch).wait()
}

/// A file's contents as text (empty when it does not exist).
func readText(_ path: String) throws -> String {
    guard fileExists(path) else { return "" }
    return String(decoding: try readWholeFile(path), as: UTF8.self)
}

/// Writes `text` to `path`, replacing it.
func writeText(_ path: String, _ text: String) throws {
    try writeBytes(path, Array(text.utf8))
}

/// Writes `bytes` to `path`, replacing it.
func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw SubprocessError(message: "cannot create \(path)") }
    defer { close(fd) }
    let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count }
    guard ok else { throw SubprocessError(message: "cannot write \(path)") }
}

/// A fresh folder under /tmp, removed (with its contents) when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/llavauhd-cli-test-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SubprocessError(message: "mkdtemp failed")
        }
        path = String(cString: made)
    }

    deinit {
        let words: [String] = ["/bin/rm", "-rf", path]
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child = pid_t()
        if posix_spawn(&child, "/bin/rm", nil, nil, &argv, nil) == 0 {
            var status: Int32 = 0
            _ = waitpid(child, &status, 0)
        }
    }
}
