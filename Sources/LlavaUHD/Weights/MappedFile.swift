#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory (`mmap`, `MAP_PRIVATE`). Pages are read from disk
/// when first touched and count as reclaimable page cache, not as the process's own memory.
/// The mapping lives as long as this object; tensor views into it keep it alive.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The first byte of the mapping (nil for an empty file, which is not mapped).
    public let base: UnsafeRawPointer?
    /// The file size in bytes.
    public let size: Int

    /// Opens and maps `path`. Throws `.io` if the file cannot be opened, is not a regular file
    /// or cannot be mapped. The file is opened non-blocking so that a FIFO or device standing
    /// in for a weight file is refused instead of hanging the open.
    public init(path: String) throws(LlavaError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw LlavaError(.io, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LlavaError(.io, "cannot stat '\(path)': \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw LlavaError(.io, "'\(path)' is not a regular file") }
        self.path = path
        self.size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw LlavaError(.io, "cannot map '\(path)': \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The whole file as a byte buffer (empty for an empty file).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Hints the kernel to read the byte range ahead (`MADV_WILLNEED`). The range is clipped
    /// to the file.
    public func prefetch(offset: Int, count: Int) {
        let lower = max(0, offset), upper = min(size, offset + max(0, count))
        guard let base, lower < upper else { return }
        let page = max(1, Int(sysconf(Int32(_SC_PAGESIZE))))
        let start = lower / page * page
        madvise(UnsafeMutableRawPointer(mutating: base + start), upper - start, MADV_WILLNEED)
    }

    /// True if `pointer` lies inside the mapping (a view's bytes are borrowed, not copied).
    public func contains(_ pointer: UnsafeRawPointer) -> Bool {
        guard let base else { return false }
        return pointer >= base && pointer < base + size
    }
}
