import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif

/// The answers file of `llavauhd eval`, opened for resuming: the question ids it already holds
/// are read first, a last line cut short by an interruption is removed, and each new answer is
/// appended as one line with one `write` (so the file only ever gains whole lines, and a killed
/// run loses at most the answer it was writing). The file is locked (`flock`) while open, so two
/// runs cannot append to the same file.
final class AnswerFile {
    let path: String
    private let fd: Int32
    /// `question_id` (as JSON text) of every answer in the file.
    private(set) var answered: Set<String> = []
    /// Answers found in the file when it was opened.
    let existingCount: Int
    /// Whether an incomplete last line was removed when opening.
    let droppedPartialLine: Bool

    /// Opens (creating it and its folders if needed) and reads `path`. Throws `.io` when it cannot
    /// be created, read or locked, `.invalidArgument` when a complete line is not an answer.
    init(path: String) throws(LlavaError) {
        try makeParentDirectories(of: path)
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LlavaError(.io, "cannot open '\(path)' for writing: \(errnoText())") }
        do {
            (answered, existingCount, droppedPartialLine) = try Self.resume(fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        self.path = path
        self.fd = fd
    }

    /// Locks the file, removes an incomplete last line and reads the ids of the whole lines.
    private static func resume(_ fd: Int32, path: String) throws(LlavaError)
        -> (answered: Set<String>, count: Int, droppedPartialLine: Bool) {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw LlavaError(.io, "'\(path)' is locked: another llavauhd eval is writing to it (give each shard its own answers file)")
        }
        let bytes = try readAll(fd, path: path)
        // Everything up to the last newline is whole lines; anything after it was cut short.
        let complete = (bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        let dropped = complete < bytes.count
        if dropped {
            guard ftruncate(fd, off_t(complete)) == 0 else {
                throw LlavaError(.io, "cannot remove the incomplete last line of '\(path)': \(errnoText())")
            }
        }
        var answered = Set<String>()
        var count = 0
        for (number, line) in jsonLines(Array(bytes[..<complete])) {
            let value: JSONValue
            do {
                value = try JSONValue.parse(line)
            } catch {
                throw LlavaError(.invalidArgument, "'\(path)' line \(number) is not an answer line: \(error.description)")
            }
            guard let id = value["question_id"] else {
                throw LlavaError(.invalidArgument, "'\(path)' line \(number) has no \"question_id\"")
            }
            answered.insert(JSONWriter.value(id))
            count += 1
        }
        return (answered, count, dropped)
    }

    deinit { close(fd) }

    /// Appends one line (`text` plus a newline) and records `key` as answered.
    func append(_ text: String, key: String) throws(LlavaError) {
        var line = text + "\n"
        let written = line.withUTF8 { buffer -> Int in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return -1
                }
                offset += n
            }
            return offset
        }
        guard written == line.utf8.count else { throw LlavaError(.io, "cannot write to '\(path)': \(errnoText())") }
        answered.insert(key)
    }

    private static func readAll(_ fd: Int32, path: String) throws(LlavaError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LlavaError(.io, "cannot read '\(path)': \(errnoText())")
            }
            if n == 0 { return bytes }
            bytes += chunk[..<n]
        }
    }
}

/// `mkdir -p` of the folder holding `path`.
func makeParentDirectories(of path: String) throws(LlavaError) {
    guard let slash = path.lastIndex(of: "/") else { return }
    let folder = String(path[..<slash])
    guard !folder.isEmpty, !directoryExists(folder) else { return }
    try makeParentDirectories(of: folder)
    guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
        throw LlavaError(.io, "cannot create the folder '\(folder)': \(errnoText())")
    }
}

/// The message of the current `errno`.
func errnoText() -> String { String(cString: strerror(errno)) }
