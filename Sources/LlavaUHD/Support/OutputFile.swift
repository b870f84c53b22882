#if canImport(Glibc)
import Glibc
#endif

/// A file written sequentially with `write(2)`; every short write is an `.io` error.
final class OutputFile {
    let path: String
    private var fd: Int32

    /// Creates or truncates `path` (following a symbolic link there).
    init(path: String) throws(LlavaError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LlavaError(.io, "cannot create '\(path)': \(String(cString: strerror(errno)))") }
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Creates `path` only if nothing is there (`O_EXCL`: not through a symbolic link, never
    /// truncating another file); nil when something is. For temporary files whose names
    /// another process could have taken or planted.
    static func createNew(path: String) throws(LlavaError) -> OutputFile? {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let error = errno
            if error == EEXIST { return nil }
            throw LlavaError(.io, "cannot create '\(path)': \(String(cString: strerror(error)))")
        }
        return OutputFile(path: path, fd: fd)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(LlavaError) {
        guard let base = bytes.baseAddress else { return }
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, base + off, min(bytes.count - off, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw LlavaError(.io, "cannot write '\(path)': \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    func write(_ bytes: [UInt8]) throws(LlavaError) {
        var failure: LlavaError?
        bytes.withUnsafeBytes { b in
            do throws(LlavaError) { try write(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Flushes the written bytes to the storage device (`fsync`), so that a rename that
    /// follows cannot publish a file whose data a crash would lose.
    func sync() throws(LlavaError) {
        guard fsync(fd) == 0 else { throw LlavaError(.io, "cannot sync '\(path)': \(String(cString: strerror(errno)))") }
    }

    func close() throws(LlavaError) {
        guard fd >= 0 else { return }
        let rc = Glibc.close(fd)
        fd = -1
        guard rc == 0 else { throw LlavaError(.io, "cannot close '\(path)': \(String(cString: strerror(errno)))") }
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }
}
