import LlavaUHD
import Testing
import TestSupport

/// `AdaptiveConvolution` (Sources/CLlavaUHD/projector_kernels.c, which works on strips of
/// neighbouring pixels and channel blocks) against the definition computed one output value
/// at a time: `out[y, x, c] = Σ_{i<d} Σ_{j<d} kernel[y, x, i·d + j] · in[refl(y + i − r), refl(x + j − r), c]`,
/// taps summed in the order (i, j) from zero with fused multiply-adds, as the C kernel's
/// contracted `acc += w·s`. The two must agree exactly (same operations in the same order),
/// on sizes that leave partial strips and channel blocks (with radius 3, at least 8 pixels and a
/// multiple of 32 channels, the AVX-512 strips of 8 pixels x 32 channels read from the input in
/// channel blocks, on a CPU that has them) and on 1 and 2 threads; the JBU stages' agreement with upstream is checked by ProjectorFixtureTests.
@Suite struct AdaptiveConvolutionTests {
    static func reference(_ input: [Float], height: Int, width: Int, channels: Int, kernels: [Float],
                          radius: Int) -> [Float] {
        let d = 2 * radius + 1
        func reflect(_ k: Int, _ size: Int) -> Int { k < 0 ? -k : (k >= size ? 2 * (size - 1) - k : k) }
        var out = [Float](repeating: 0, count: height * width * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    var acc: Float = 0
                    for i in 0..<d {
                        for j in 0..<d {
                            let w = kernels[(y * width + x) * d * d + i * d + j]
                            let s = input[(reflect(y + i - radius, height) * width + reflect(x + j - radius, width)) * channels + c]
                            acc.addProduct(w, s)
                        }
                    }
                    out[(y * width + x) * channels + c] = acc
                }
            }
        }
        return out
    }

    @Test(arguments: [(5, 7, 37, 3), (9, 4, 16, 3), (6, 11, 64, 2), (4, 4, 3, 3), (12, 13, 48, 1), (5, 19, 96, 3), (4, 16, 64, 3)])
    func matchesTheDefinitionExactly(_ shape: (Int, Int, Int, Int)) throws {
        let (height, width, channels, radius) = shape
        let d = 2 * radius + 1
        var random = TestRandom(seed: UInt64(height * 1000 + width * 10 + channels))
        let input = random.floats(height * width * channels, -2, 2)
        let kernels = random.floats(height * width * d * d, -0.5, 1)
        let expected = Self.reference(input, height: height, width: width, channels: channels, kernels: kernels, radius: radius)
        for threads in [1, 2] {
            var out = [Float](repeating: .nan, count: expected.count)
            try input.withUnsafeBufferPointer { i in
                try kernels.withUnsafeBufferPointer { k in
                    try out.withUnsafeMutableBufferPointer { o in
                        try AdaptiveConvolution.apply(i.baseAddress!, height: height, width: width, channels: channels,
                                                      kernels: k.baseAddress!, radius: radius, into: o.baseAddress!,
                                                      threads: threads)
                    }
                }
            }
            #expect(out == expected, "\(height)x\(width)x\(channels) radius \(radius), \(threads) thread(s)")
        }
    }

    /// `apply(blocked:)` (the input already in blocks of 32 channels, as JBU's bicubic passes
    /// write it) against the definition: every pixel, the 8-pixel strips and the tail pixels of
    /// a row (widths not a multiple of 8), read from the blocked layout.
    @Test(arguments: [(5, 19, 64), (9, 13, 32), (4, 8, 96), (7, 4, 32)])
    func blockedInputMatchesTheDefinitionExactly(_ shape: (Int, Int, Int)) throws {
        let (height, width, channels) = shape, radius = 3, d = 7
        guard AdaptiveConvolution.usesBlocks(radius: radius, channels: channels) else {
            print("adaptive convolution: no blocked kernel on this CPU, not run")
            return
        }
        var random = TestRandom(seed: UInt64(height * 1000 + width * 10 + channels + 1))
        let input = random.floats(height * width * channels, -2, 2)
        let kernels = random.floats(height * width * d * d, -0.5, 1)
        let expected = Self.reference(input, height: height, width: width, channels: channels, kernels: kernels, radius: radius)
        var blocked = [Float](repeating: 0, count: input.count)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    blocked[((y * (channels / 32) + c / 32) * width + x) * 32 + c % 32] = input[(y * width + x) * channels + c]
                }
            }
        }
        for threads in [1, 2] {
            var out = [Float](repeating: .nan, count: expected.count)
            try blocked.withUnsafeBufferPointer { i in
                try kernels.withUnsafeBufferPointer { k in
                    try out.withUnsafeMutableBufferPointer { o in
                        try AdaptiveConvolution.apply(blocked: i.baseAddress!, height: height, width: width, channels: channels,
                                                      kernels: k.baseAddress!, radius: radius, into: o.baseAddress!,
                                                      threads: threads)
                    }
                }
            }
            #expect(out == expected, "\(height)x\(width)x\(channels), \(threads) thread(s)")
        }
        // Without a blocked kernel for the shape: an error, nothing computed.
        var out = [Float](repeating: .nan, count: 4 * 4 * 3)
        #expect(throws: LlavaError.self) {
            try AdaptiveConvolution.apply(blocked: input, height: 4, width: 4, channels: 3, kernels: kernels, radius: radius,
                                          into: &out)
        }
    }
}
