import CLlavaUHD

/// The per-pixel ("adaptive") convolution of FeatUp's JBU: every output pixel has its own
/// `d × d` kernel (d = 2·radius + 1), shared by all channels, applied to the reflect-padded
/// input (`F.pad(mode='reflect')`: index −k reads k, index size−1+k reads size−1−k).
///
///     out[y, x, c] = Σ_{i<d} Σ_{j<d} kernel[y, x, i·d + j] · in[refl(y + i − r), refl(x + j − r), c]
///
/// Layout: input and output `[height, width, channels]`, kernels `[height, width, d·d]`.
/// The taps are summed in the order (i, j) row-major, as upstream's CPU kernel does (in C:
/// `luhd_proj_adaptive_conv_rows`); output rows are split across threads, so the result does
/// not depend on the thread count.
package enum AdaptiveConvolution {
    /// Requires `radius < height` and `radius < width` (the reflect padding's own rule); throws
    /// `.invalidArgument` otherwise.
    package static func apply(_ input: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                             kernels: UnsafePointer<Float>, radius: Int,
                             into out: UnsafeMutablePointer<Float>, threads: Int = 1) throws(LlavaError) {
        try run(map: input, blocked: nil, height: height, width: width, channels: channels, kernels: kernels,
                radius: radius, into: out, threads: threads)
    }

    /// Whether this CPU convolves a map of `channels` with this radius from the blocked layout
    /// (`[height, channels/32, width, 32]`, `luhd_proj_channel_blocks`; AVX-512 or AVX2, d = 7,
    /// channels a multiple of 32), so that a caller that makes the input can write it in that
    /// layout and call `apply(blocked:...)`.
    package static func usesBlocks(radius: Int, channels: Int) -> Bool {
        radius >= 0 && luhd_proj_adaptive_conv_uses_blocks(2 * radius + 1, channels) != 0
    }

    /// `apply` with the input in the blocked layout; requires `usesBlocks(radius:channels:)`
    /// (throws `.internal` otherwise) and the same sizes as `apply`. Same results.
    package static func apply(blocked input: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                             kernels: UnsafePointer<Float>, radius: Int,
                             into out: UnsafeMutablePointer<Float>, threads: Int = 1) throws(LlavaError) {
        guard usesBlocks(radius: radius, channels: channels) else {
            throw LlavaError(.internal, "adaptive convolution: no blocked kernel for radius \(radius), \(channels) channels on this CPU")
        }
        try run(map: nil, blocked: input, height: height, width: width, channels: channels, kernels: kernels,
                radius: radius, into: out, threads: threads)
    }

    /// The convolution from the `[height, width, channels]` map (`map`, rearranged in blocks
    /// first when `usesBlocks`) or from its blocked form (`blocked`).
    private static func run(map: UnsafePointer<Float>?, blocked input: UnsafePointer<Float>?, height: Int, width: Int,
                            channels: Int, kernels: UnsafePointer<Float>, radius: Int,
                            into out: UnsafeMutablePointer<Float>, threads: Int) throws(LlavaError) {
        guard radius >= 0, radius < height, radius < width else {
            throw LlavaError(.invalidArgument,
                             "adaptive convolution: a \(height)x\(width) map is too small for reflect padding by \(radius)")
        }
        guard channels > 0 else { return }
        let d = 2 * radius + 1
        // Reflected source row/column of every padded position.
        guard d * d <= 64 else {
            throw LlavaError(.invalidArgument, "adaptive convolution: radius \(radius) exceeds the 8x8 tap limit")
        }
        let rowOf = reflectedIndices(size: height, radius: radius)
        let colOf = reflectedIndices(size: width, radius: radius)
        let src = map.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        let ker = SendablePointer(UnsafeMutablePointer(mutating: kernels))
        let o = SendablePointer(out)
        let parts = chunks(height, parts: height * width * channels < (1 << 15) ? 1 : threads * 4)
        // With a blocked kernel a map is first rearranged in blocks of 32 channels (one more pass over
        // it, against 49 multiply-adds per value; see projector_kernels.h).
        let made: UnsafeMutablePointer<Float>? = input == nil && usesBlocks(radius: radius, channels: channels)
            ? HugePages.allocateFloats(count: height * width * channels) : nil
        defer { made?.deallocate() }
        if let made, let src {
            let m = SendablePointer(made)
            parallelFor(parts.count, threads: threads) { part in
                luhd_proj_channel_blocks(src.p, width, channels, parts[part].lowerBound, parts[part].upperBound, m.p)
            }
        }
        let blocks = (input.map { UnsafeMutablePointer(mutating: $0) } ?? made).map { SendablePointer($0) }
        rowOf.withUnsafeBufferPointer { rb in
            colOf.withUnsafeBufferPointer { cb in
                let rows = SendablePointer(UnsafeMutablePointer(mutating: rb.baseAddress!))
                let cols = SendablePointer(UnsafeMutablePointer(mutating: cb.baseAddress!))
                parallelFor(parts.count, threads: threads) { part in
                    luhd_proj_adaptive_conv_rows(src?.p, blocks?.p, width, channels, ker.p, d, rows.p, cols.p,
                                                 parts[part].lowerBound, parts[part].upperBound, o.p)
                }
            }
        }
    }

    /// The source index of every padded position `0 ..< size + 2·radius`.
    static func reflectedIndices(size: Int, radius: Int) -> [Int32] {
        (0..<(size + 2 * radius)).map { Int32(reflect($0 - radius, size)) }
    }

    /// `F.pad(mode='reflect')` index rule for one axis (valid for −size < k < 2·size − 1).
    @inline(__always)
    static func reflect(_ k: Int, _ size: Int) -> Int {
        if k < 0 { return -k }
        if k >= size { return 2 * (size - 1) - k }
        return k
    }
}
