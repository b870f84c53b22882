#if canImport(Glibc)
import Glibc
#endif

/// A session file opened for `SessionFile.load`, read front to back with read(2) (not mapped:
/// a file truncated by another process while it is read ends in a short read, never in
/// SIGBUS), in calls of at most `chunkBytes`, straight into the caller's memory.
final class SessionFileInput {
    let path: String
    /// The file's size when it was opened: what the header's sizes are checked against.
    let size: Int
    /// Bytes read so far.
    private(set) var offset = 0
    private let fd: Int32

    /// Most bytes one read(2) call asks for.
    static let chunkBytes = 8 << 20

    /// Opens the regular file at `path`. Throws `.io`.
    init(path: String) throws(LlavaError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw LlavaError(.io, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw LlavaError(.io, "cannot stat '\(path)': \(reason)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw LlavaError(.io, "'\(path)' is not a regular file")
        }
        self.fd = fd
        self.path = path
        self.size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Fills `buffer` with the next `buffer.count` bytes. Throws `.io` when reading fails and
    /// `.badSessionFile` when the file ends first (it shrank after it was opened).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(LlavaError) {
        var done = 0
        while done < buffer.count {
            let n = Glibc.read(fd, buffer.baseAddress! + done, min(buffer.count - done, Self.chunkBytes))
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw LlavaError(.io, "cannot read '\(path)': \(String(cString: strerror(errno)))") }
            guard n > 0 else {
                throw LlavaError(.badSessionFile, "\(path): the file ended at byte \(offset + done) while it was read "
                                 + "(\(size) bytes when it was opened): it is truncated")
            }
            done += n
        }
        offset += done
    }

    /// The next `count` bytes (at most the bytes left of the size the file had when opened), in
    /// a buffer the caller deallocates. Throws `.badSessionFile` past the end, `.outOfMemory`,
    /// `.io`.
    func read(_ count: Int) throws(LlavaError) -> UnsafeMutableRawBufferPointer {
        guard count >= 0, count <= size - offset else {
            throw LlavaError(.badSessionFile, "\(path): \(count) bytes at offset \(offset) pass the end of the file (\(size) bytes)")
        }
        try Allocation.ensureAvailable(bytes: count, what: "\(count) bytes of the session file '\(path)'")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, count), alignment: 16)
        let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
        do {
            try read(into: bytes)
        } catch {
            buffer.deallocate()
            throw error
        }
        return bytes
    }

    /// Throws `.badSessionFile` unless the file ends here (it did not grow after it was opened).
    func expectEnd() throws(LlavaError) {
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw LlavaError(.io, "cannot read '\(path)': \(String(cString: strerror(errno)))") }
            guard n == 0 else {
                throw LlavaError(.badSessionFile, "\(path): bytes follow the \(offset) its header describes (the file grew while it was read)")
            }
            return
        }
    }
}
