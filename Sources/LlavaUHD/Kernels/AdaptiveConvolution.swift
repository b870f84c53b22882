/// The per-pixel ("adaptive") convolution of FeatUp's JBU: every output pixel has its own
/// `d × d` kernel (d = 2·radius + 1), shared by all channels, applied to the reflect-padded
/// input (`F.pad(mode='reflect')`: index −k reads k, index size−1+k reads size−1−k).
///
///     out[y, x, c] = Σ_{i<d} Σ_{j<d} kernel[y, x, i·d + j] · in[refl(y + i − r), refl(x + j − r), c]
///
/// Layout: input and output `[height, width, channels]`, kernels `[height, width, d·d]`.
/// The taps are summed in the order (i, j) row-major, as upstream's CPU kernel does; output
/// rows are split across threads, so the result does not depend on the thread count.
public enum AdaptiveConvolution {
    /// Channels processed together per pass over a pixel's taps (4 SIMD16 accumulators).
    static let channelBlock = 64

    /// Requires `radius < height` and `radius < width` (the reflect padding's own rule); throws
    /// `.invalidArgument` otherwise.
    public static func apply(_ input: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                             kernels: UnsafePointer<Float>, radius: Int,
                             into out: UnsafeMutablePointer<Float>, threads: Int = 1) throws(LlavaError) {
        guard radius >= 0, radius < height, radius < width else {
            throw LlavaError(.invalidArgument,
                             "adaptive convolution: a \(height)x\(width) map is too small for reflect padding by \(radius)")
        }
        guard channels > 0 else { return }
        let d = 2 * radius + 1
        let taps = d * d
        // Reflected source row/column of every padded position.
        let rowOf = (0..<(height + 2 * radius)).map { Int32(reflect($0 - radius, height)) }
        let colOf = (0..<(width + 2 * radius)).map { Int32(reflect($0 - radius, width)) }
        let src = SendablePointer(UnsafeMutablePointer(mutating: input))
        let ker = SendablePointer(UnsafeMutablePointer(mutating: kernels))
        let o = SendablePointer(out)
        let parts = chunks(height, parts: height * width * channels < (1 << 15) ? 1 : threads * 4)
        rowOf.withUnsafeBufferPointer { rb in
            colOf.withUnsafeBufferPointer { cb in
                let rows = SendablePointer(UnsafeMutablePointer(mutating: rb.baseAddress!))
                let cols = SendablePointer(UnsafeMutablePointer(mutating: cb.baseAddress!))
                parallelFor(parts.count, threads: threads) { part in
                    // Source pixel offsets (in floats) of the current output pixel's taps.
                    let offsets = UnsafeMutablePointer<Int>.allocate(capacity: taps)
                    defer { offsets.deallocate() }
                    for y in parts[part] {
                        for x in 0..<width {
                            for i in 0..<d {
                                let rowBase = Int(rows.p[y + i]) * width
                                for j in 0..<d { offsets[i * d + j] = (rowBase + Int(cols.p[x + j])) * channels }
                            }
                            convolvePixel(src.p, offsets: offsets, weights: ker.p + (y * width + x) * taps,
                                          taps: taps, channels: channels, into: o.p + (y * width + x) * channels)
                        }
                    }
                }
            }
        }
    }

    /// `F.pad(mode='reflect')` index rule for one axis (valid for −size < k < 2·size − 1).
    @inline(__always)
    static func reflect(_ k: Int, _ size: Int) -> Int {
        if k < 0 { return -k }
        if k >= size { return 2 * (size - 1) - k }
        return k
    }

    /// One output pixel: `out[c] = Σ_t weights[t] · src[offsets[t] + c]`, taps in order.
    @inline(__always)
    static func convolvePixel(_ src: UnsafePointer<Float>, offsets: UnsafePointer<Int>, weights: UnsafePointer<Float>,
                              taps: Int, channels: Int, into out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(src)
        let dst = UnsafeMutableRawPointer(out)
        var c = 0
        while c + channelBlock <= channels {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            for t in 0..<taps {
                let w = SIMD16<Float>(repeating: weights[t])
                let b = (offsets[t] + c) * 4
                a0 += w * raw.loadUnaligned(fromByteOffset: b, as: SIMD16<Float>.self)
                a1 += w * raw.loadUnaligned(fromByteOffset: b + 64, as: SIMD16<Float>.self)
                a2 += w * raw.loadUnaligned(fromByteOffset: b + 128, as: SIMD16<Float>.self)
                a3 += w * raw.loadUnaligned(fromByteOffset: b + 192, as: SIMD16<Float>.self)
            }
            dst.storeBytes(of: a0, toByteOffset: c * 4, as: SIMD16<Float>.self)
            dst.storeBytes(of: a1, toByteOffset: c * 4 + 64, as: SIMD16<Float>.self)
            dst.storeBytes(of: a2, toByteOffset: c * 4 + 128, as: SIMD16<Float>.self)
            dst.storeBytes(of: a3, toByteOffset: c * 4 + 192, as: SIMD16<Float>.self)
            c += channelBlock
        }
        while c + 16 <= channels {
            var a = SIMD16<Float>()
            for t in 0..<taps {
                a += SIMD16<Float>(repeating: weights[t]) * raw.loadUnaligned(fromByteOffset: (offsets[t] + c) * 4, as: SIMD16<Float>.self)
            }
            dst.storeBytes(of: a, toByteOffset: c * 4, as: SIMD16<Float>.self)
            c += 16
        }
        while c < channels {
            var a: Float = 0
            for t in 0..<taps { a += weights[t] * src[offsets[t] + c] }
            out[c] = a
            c += 1
        }
    }
}
