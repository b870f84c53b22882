import CLlavaUHD

/// Large temporaries that are made fresh on every call (VDIM's upsampled maps and their
/// channel-blocked copies, the window attention's block buffers) get each page from the kernel
/// on first touch. On the 2-vCPU VMs measured a 4 KB page fault costs about 0.5 ms of CPU per
/// MB (36 MB: 19 ms), a transparent huge page about a fifth of that (36 MB: 3.7 ms, mostly the
/// zeroing), so such buffers are advised for huge pages before their first touch
/// (`luhd_advise_huge_pages`; with THP set to `madvise` or `always`; nothing changes where it
/// is `never`). Values are never affected.
enum HugePages {
    /// Below this many bytes no advice is given (no whole 2 MB stretch is likely inside).
    static let advisedFrom = 4 << 20

    /// `count` zeros, advised for huge pages when large.
    static func zeroedFloats(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress {
                advise(base, bytes: count * 4)
                base.initialize(repeating: 0, count: count)
            }
            initialized = count
        }
    }

    /// `count` floats that `write` sets, every one of them (the array's values are whatever
    /// `write` leaves), advised for huge pages when large: for an output that is written whole,
    /// without the zeroing pass of `zeroedFloats` (one thread over the whole buffer).
    static func writtenFloats(count: Int, _ write: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress {
                advise(base, bytes: count * 4)
                write(base)
            }
            initialized = count
        }
    }

    /// Advises `bytes` bytes from `p` (not yet touched) for huge pages when large.
    static func advise(_ p: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= advisedFrom { luhd_advise_huge_pages(p, bytes) }
    }

    /// `count` uninitialised floats, 64-byte aligned, advised for huge pages when large.
    static func allocateFloats(count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        advise(raw, bytes: count * 4)
        return raw.bindMemory(to: Float.self, capacity: max(1, count))
    }
}
