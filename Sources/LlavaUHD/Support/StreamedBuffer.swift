#if canImport(Glibc)
import Glibc
#endif

/// Anonymous memory (`mmap`) for data that decoding streams through once per token: the
/// row-interleaved weight copies (`QuantizedMatrix.interleaved`), load-time Q8_0 copies of dense
/// weights (`Int8Product.quantize`) and the KV cache (`KVCache`). A size the machine cannot
/// provide is a nil result, not a trap. Pages are committed only when first written.
///
/// Buffers of at least `hugePageBytes` start on a 2 MiB boundary with transparent huge pages
/// asked for (`MADV_HUGEPAGE`; the kernel may still give 4 KiB pages). With 4 KiB pages every
/// page streamed costs a TLB miss, and attention reads the cache as rows 8 KiB apart (Vicuna-7B,
/// 16-bit), so each cached position of each head is a page of its own.
final class StreamedBuffer: @unchecked Sendable {
    /// The first byte (64-byte aligned at least).
    let bytes: UnsafeMutableRawPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int

    /// The size from which huge pages are asked for, and their alignment.
    static let hugePageBytes = 2 << 20

    init?(byteCount: Int) {
        let huge = Self.hugePageBytes
        guard byteCount > 0, byteCount <= Int.max / 2 - 2 * huge else { return nil }
        let wantsHuge = byteCount >= huge
        let size = wantsHuge ? (byteCount + huge - 1) / huge * huge + huge : byteCount
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            return nil
        }
        mapping = p
        mappedBytes = size
        if wantsHuge {
            let skip = (huge - Int(bitPattern: p) % huge) % huge
            bytes = p + skip
            madvise(bytes, size - skip, MADV_HUGEPAGE)
        } else {
            bytes = p
        }
    }

    deinit { munmap(mapping, mappedBytes) }
}
