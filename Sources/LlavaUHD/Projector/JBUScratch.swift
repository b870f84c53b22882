/// The JBU passes' intermediate maps (the bicubic row sums and the blocked bicubic map,
/// `JBUStage.upsample`), kept for one projector call so that every view's and stage's upsampling
/// reuses the same pages. Fresh, they come zeroed from the kernel on first touch (about 50 MB
/// for the 4x level of a 308x350 view, twice per view: VDIM's map and the Gram product's), a
/// pass of page clearing that a perf profile of `vision-stages` showed at about 12 % of the
/// projector's CPU samples. Used by one call on one thread at a time; the memory is freed with
/// the object (a `VisionScratch` keeps one between the calls of a session).
final class JBUScratch: @unchecked Sendable {
    private var base: UnsafeMutablePointer<Float>?
    private var capacity = 0

    deinit { base?.deallocate() }

    /// Bytes held.
    var byteCount: Int { capacity * MemoryLayout<Float>.stride }

    /// `count` floats (contents unspecified), 64-byte aligned; valid until the next call.
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let base, capacity >= count { return base }
        base?.deallocate()
        let p = HugePages.allocateFloats(count: count)
        base = p
        capacity = count
        return p
    }
}
