#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory (`mmap`, `MAP_PRIVATE`). Pages are read from disk
/// when first touched and count as reclaimable page cache, not as the process's own memory.
/// The mapping lives as long as this object; tensor views into it keep it alive.
package final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    package let path: String
    /// The first byte of the mapping (nil for an empty file, which is not mapped).
    package let base: UnsafeRawPointer?
    /// The file size in bytes.
    package let size: Int

    /// Opens and maps `path`. Throws `.io` if the file cannot be opened, is not a regular file
    /// or cannot be mapped. The file is opened non-blocking so that a FIFO or device standing
    /// in for a weight file is refused instead of hanging the open.
    package init(path: String) throws(LlavaError) {
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
    package var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Drops the whole pages of `[start, start + count)` (inside the mapping) from this process's
    /// resident memory (`madvise(MADV_DONTNEED)`): the bytes stay valid and are read again from
    /// the file (or the page cache) when next touched. For data a loader has copied elsewhere.
    package func releasePages(_ start: UnsafeRawPointer, count: Int) {
        guard contains(start), count > 0, contains(start + (count - 1)) else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + count) / page * page
        guard end > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        madvise(p, end - first, MADV_DONTNEED)
    }

    /// True if `pointer` lies inside the mapping (a view's bytes are borrowed, not copied).
    package func contains(_ pointer: UnsafeRawPointer) -> Bool {
        guard let base else { return false }
        return pointer >= base && pointer < base + size
    }
}
