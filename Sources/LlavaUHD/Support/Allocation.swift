import CLlavaUHD

/// The one place where the library reserves a buffer whose size comes from its input (decoded
/// and resized images, normalised views, tensors read out of weight files).
///
/// Why: a Swift array whose memory cannot be had aborts the process ("could not allocate
/// memory"), and a size product that overflows traps. A library inside someone else's process
/// must instead return `.outOfMemory`. So every input-sized array is made here: the byte count
/// is computed with overflow checks, and a large request is first reserved with `malloc` and
/// handed straight back (`luhd_can_allocate`, in C: the Swift optimiser removes an unused
/// malloc/free pair and assumes it succeeded), which fails exactly where the array allocation
/// would abort: beyond the address-space limit (RLIMIT_AS), beyond what the kernel's overcommit
/// heuristic grants in one piece, or beyond the address space. Glibc serves such sizes with
/// `mmap`, so the check costs a map and an unmap, and no page is touched.
///
/// What it cannot promise: another thread of the host that takes the memory between the check
/// and the array's own allocation (a window of a few instructions) still leads to the abort,
/// and memory the kernel granted but cannot back later is the OOM killer's business, as for
/// any program.
enum Allocation {
    /// Below this many bytes the check is skipped: such sizes do not fail where the process
    /// can still run at all.
    static let checkedFrom = 1 << 20

    /// `count` elements of `T` in bytes; `.outOfMemory` naming `what` when `count` is negative
    /// or the product overflows.
    static func byteCount<T>(_ count: Int, of type: T.Type, what: @autoclosure () -> String) throws(LlavaError) -> Int {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        // Int.max / 2: room for the array header and malloc's own bookkeeping.
        guard count >= 0, !overflow, bytes <= Int.max / 2 else {
            throw LlavaError(.outOfMemory, "\(what()) needs \(count) elements of \(MemoryLayout<T>.stride) bytes, more than can be addressed")
        }
        return bytes
    }

    /// Throws `.outOfMemory` naming `what` unless the system can give `bytes` bytes right now.
    static func ensureAvailable(bytes: Int, what: @autoclosure () -> String) throws(LlavaError) {
        guard bytes >= checkedFrom else { return }
        guard luhd_can_allocate(bytes) != 0 else {
            throw LlavaError(.outOfMemory, "cannot allocate \(bytes) bytes for \(what())")
        }
    }

    /// An array of `count` elements that `initialize` fills (it must initialise all of them);
    /// `.outOfMemory` naming `what` instead of an abort when the memory cannot be had.
    static func array<T>(count: Int, what: @autoclosure () -> String,
                         initializingWith initialize: (UnsafeMutableBufferPointer<T>) -> Void) throws(LlavaError) -> [T] {
        try ensureAvailable(bytes: try byteCount(count, of: T.self, what: what()), what: what())
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialize(buffer)
            initialized = count
        }
    }

    /// `count` copies of `value`, or `.outOfMemory` naming `what`.
    static func array<T>(repeating value: T, count: Int, what: @autoclosure () -> String) throws(LlavaError) -> [T] {
        try ensureAvailable(bytes: try byteCount(count, of: T.self, what: what()), what: what())
        return [T](repeating: value, count: count)
    }
}
