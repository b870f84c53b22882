import CLlavaUHD
import LlavaUHD

/// Memory-read bandwidth: the bound a bandwidth-limited kernel (a decoded token reading every
/// weight once) is measured against. A buffer well beyond the caches is read with 256-bit loads
/// (`luhd_peak_read_streams`, an XOR of every byte, so nothing is skipped), split in contiguous
/// parts over the threads, each thread walking its part as 1, 4 or 8 streams side by side (one
/// stream per core leaves bandwidth unused on some CPUs, Zen 4 among them), best over the stream
/// counts and N repeats: the most this machine reads, not what one access pattern gets. Its own
/// buffer is asked for transparent huge pages, as the weights decoding streams are
/// (`StreamedBuffer`); with 4 KiB pages this CPU reads less (a 2-vCPU EPYC, Zen 3: about 43
/// against 47 GB/s on two threads, BENCHMARKS.md notes:decode10).
/// Benchmarks measure it in the same run as what they compare with it, since other load on the
/// machine moves both.
final class ReadBandwidth {
    let bytes: Int
    private let buffer: UnsafeMutableRawPointer

    init(bytes: Int = 1 << 30) {
        self.bytes = bytes
        buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        luhd_advise_huge_pages(buffer, bytes)
        let parts = chunks(bytes / 4096, parts: 64), b = SendablePointer(buffer.assumingMemoryBound(to: UInt8.self))
        parallelFor(parts.count, threads: ComputeContext.defaultThreads) { p in
            memsetPattern(b.p + parts[p].lowerBound * 4096, parts[p].count * 4096)
        }
    }

    deinit { buffer.deallocate() }

    /// Streams each thread walks side by side, tried in turn.
    static let streamCounts = [1, 4, 8]

    /// Bytes per second with `threads` threads, best of `repeats` at each of `streamCounts`.
    func measure(threads: Int, repeats: Int) -> Double {
        Self.measure(UnsafeRawPointer(buffer), bytes: bytes, threads: threads, repeats: repeats)
    }

    /// Bytes per second of reading `bytes` bytes at `buffer` (a multiple of 4096) with `threads`
    /// threads, best of `repeats` at each of `streamCounts`.
    static func measure(_ buffer: UnsafeRawPointer, bytes: Int, threads: Int, repeats: Int) -> Double {
        let parts = chunks(bytes / 4096, parts: threads)
        let b = SendablePointer(UnsafeMutableRawPointer(mutating: buffer).assumingMemoryBound(to: UInt8.self))
        var sink: UInt64 = 0
        let t = Self.streamCounts.map { streams in
            bestOf(repeats) {
                var sums = [UInt64](repeating: 0, count: parts.count)
                sums.withUnsafeMutableBufferPointer { s in
                    let sp = SendablePointer(s.baseAddress!)
                    parallelFor(parts.count, threads: threads) { p in
                        sp.p[p] = luhd_peak_read_streams(b.p + parts[p].lowerBound * 4096, UInt(parts[p].count * 4096), Int32(streams))
                    }
                }
                sink ^= sums.reduce(0, ^)
            }
        }.min()!
        if sink == 0x1234_5678 { print("") }
        return Double(bytes) / t
    }

    /// The buffer, for benchmarks that time their own kernels over it.
    var raw: UnsafeMutableRawPointer { buffer }
}

/// Pseudo-random bytes: pages with repeated contents read faster than real data on some
/// virtual machines (deduplicated by the host), which would inflate the bound.
private func memsetPattern(_ p: UnsafeMutablePointer<UInt8>, _ n: Int) {
    var rng = SplitMix(seed: UInt64(UInt(bitPattern: p)))
    let words = UnsafeMutableRawPointer(p)
    for i in stride(from: 0, to: n - 7, by: 8) { words.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
}
