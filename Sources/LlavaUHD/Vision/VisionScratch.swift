import Synchronization

/// Working memory of the vision path kept between calls: one per `LlavaModel`, shared by its
/// sessions (as its image and prefix caches are), so that every image after the first reuses
/// pages instead of taking fresh ones; a benchmark may hold its own.
///
/// Why: buffers above glibc's mmap threshold are fresh pages on every call, and the kernel zeroes
/// each page on first touch. The ViT's `EncoderBuffers` are about 190 MB for the 7 views of a
/// 1024×768 image (3847 tokens: the residual stream, LayerNorm output, q/k/v, an MLP block, the
/// attention score buffers, the widened weights) and the JBU passes' maps (`JBUScratch`) up to
/// about 100 MB; clearing them was 4-5 % of the vision samples in a perf profile on Zen 4
/// (notes:fastvit8, notes:vdim8).
///
/// Thread rules: the owner passes it in `ComputeContext.visionScratch` (`LlavaModel.computeContext`
/// does); a call takes the buffers out for its duration and puts them back at its end, so calls
/// running at the same time (sessions of one model on several threads) never share memory: all
/// but the one that took the kept buffers allocate their own. Bounded: one kept set of each kind
/// (the larger one when two calls give theirs back), none above `retainedBytes`; memory per
/// model, not per session, so many open sessions cost no more than one. Everything kept is
/// freed with the object. Reused buffers give the same results as fresh ones (every element a
/// call reads it has written first in that call).
package final class VisionScratch: Sendable {
    /// The most bytes kept of each kind of buffer (larger ones are used once and freed): 512 MiB.
    package static let retainedBytes = 512 << 20

    private let encoder = Mutex<EncoderBuffers?>(nil)
    private let jbu = Mutex<JBUScratch?>(nil)

    package init() {}

    /// The kept encoder buffers when they fit `shape` (taken out until `keep`), else nil.
    func takeEncoderBuffers(fitting shape: EncoderBuffers.Shape) -> EncoderBuffers? {
        encoder.withLock { spare -> EncoderBuffers? in
            guard let buffers = spare, buffers.fits(shape) else { return nil }
            spare = nil
            return buffers
        }
    }

    /// Keeps `buffers` for the next call (within `retainedBytes`), replacing smaller kept ones.
    func keep(_ buffers: EncoderBuffers) {
        guard buffers.byteCount <= Self.retainedBytes else { return }
        encoder.withLock { spare in
            if (spare?.byteCount ?? 0) <= buffers.byteCount { spare = buffers }
        }
    }

    /// The kept JBU maps (taken out until `keep`), else new ones.
    func takeJBU() -> JBUScratch {
        jbu.withLock { spare -> JBUScratch? in
            let taken = spare
            spare = nil
            return taken
        } ?? JBUScratch()
    }

    /// Keeps `scratch` for the next call (within `retainedBytes`).
    func keep(_ scratch: JBUScratch) {
        guard scratch.byteCount <= Self.retainedBytes else { return }
        jbu.withLock { spare in
            if (spare?.byteCount ?? 0) <= scratch.byteCount { spare = scratch }
        }
    }
}
