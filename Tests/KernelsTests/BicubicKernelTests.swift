import TestSupport
import CLlavaUHD
@testable import LlavaUHD
import Testing

/// The vectorised, separable, threaded `TorchResample.bicubic` against a direct scalar
/// evaluation of the same formula in torch's order (Σ_y w_y·(Σ_x w_x·in), no fused
/// multiply-add): the results must be bit-identical. (Agreement with PyTorch itself is checked
/// against torch fixtures in TorchResampleTests.swift.)
@Suite struct BicubicKernelTests {
    static func scalarReference(_ src: [Float], layout: TorchResample.Layout, channels: Int, height: Int, width: Int,
                                outHeight: Int, outWidth: Int, scaleHeight: Float?, scaleWidth: Float?) -> [Float] {
        let ty = TorchResample.cubicTaps(input: height, output: outHeight, scale: scaleHeight)
        let tx = TorchResample.cubicTaps(input: width, output: outWidth, scale: scaleWidth)
        var out = [Float](repeating: 0, count: channels * outHeight * outWidth)
        for oy in 0..<outHeight {
            for ox in 0..<outWidth {
                for c in 0..<channels {
                    var acc: Float = 0
                    for ky in 0..<4 {
                        let y = ty.index[oy * 4 + ky]
                        var row: Float = 0
                        for kx in 0..<4 {
                            let x = tx.index[ox * 4 + kx]
                            let v = layout == .chw ? src[(c * height + y) * width + x] : src[(y * width + x) * channels + c]
                            row = row + tx.weight[ox * 4 + kx] * v
                        }
                        acc = acc + ty.weight[oy * 4 + ky] * row
                    }
                    out[layout == .chw ? (c * outHeight + oy) * outWidth + ox : (oy * outWidth + ox) * channels + c] = acc
                }
            }
        }
        return out
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let channels, height, width, outHeight, outWidth: Int
        var scale: Float? = nil
        var testDescription: String { "\(channels)×\(height)×\(width)→\(outHeight)×\(outWidth)" }
    }

    static let cases: [Case] = [
        Case(channels: 37, height: 24, width: 24, outHeight: 48, outWidth: 48),     // VDIM 2× (C reduced)
        Case(channels: 19, height: 12, width: 12, outHeight: 22, outWidth: 25),     // Hiwin position table
        Case(channels: 17, height: 24, width: 24, outHeight: 20, outWidth: 27),     // CLIP positions, downscale
        Case(channels: 5, height: 7, width: 3, outHeight: 30, outWidth: 11),
        Case(channels: 1, height: 1, width: 1, outHeight: 3, outWidth: 2),
        Case(channels: 33, height: 10, width: 9, outHeight: 20, outWidth: 18, scale: 2),
    ]

    @Test(arguments: cases)
    func matchesScalarEvaluationBitForBit(_ c: Case) {
        var rng = TestRandom(seed: UInt64(c.channels * 1000 + c.outWidth))
        let src = rng.floats(c.channels * c.height * c.width, -5, 5)
        for layout in [TorchResample.Layout.chw, .hwc] {
            let ref = Self.scalarReference(src, layout: layout, channels: c.channels, height: c.height, width: c.width,
                                           outHeight: c.outHeight, outWidth: c.outWidth,
                                           scaleHeight: c.scale, scaleWidth: c.scale)
            for threads in [1, 2, 3] {
                var out = [Float](repeating: .nan, count: ref.count)
                out.withUnsafeMutableBufferPointer { o in
                    TorchResample.bicubic(src, layout: layout, channels: c.channels, height: c.height, width: c.width,
                                          outHeight: c.outHeight, outWidth: c.outWidth, into: o.baseAddress!,
                                          scaleHeight: c.scale, scaleWidth: c.scale, threads: threads)
                }
                #expect(firstDifference(out, ref) == nil, "\(layout) threads \(threads)")
            }
        }
    }

    /// JBU's bicubic passes into the blocked layout (`luhd_proj_bicubic_*_blocked`, AVX-512 or
    /// AVX2, channels a multiple of 32) against the scalar evaluation rearranged in blocks of 32
    /// channels (`[outHeight, channels/32, outWidth, 32]`), bit for bit, with the rows of both
    /// passes split in two calls. Widths that are not a multiple of 8 or 16 included.
    @Test(arguments: [(64, 9, 11), (96, 5, 4), (32, 12, 25)])
    func blockedPassesMatchScalarEvaluationBitForBit(_ shape: (Int, Int, Int)) {
        let (c, h, w) = shape, oh = 2 * h, ow = 2 * w
        guard AdaptiveConvolution.usesBlocks(radius: 3, channels: c) else {
            print("blocked bicubic: no AVX-512 or AVX2 on this CPU, not run")
            return
        }
        var rng = TestRandom(seed: UInt64(c * 100 + w))
        let src = rng.floats(c * h * w, -5, 5)
        let ref = Self.scalarReference(src, layout: .hwc, channels: c, height: h, width: w, outHeight: oh, outWidth: ow,
                                       scaleHeight: nil, scaleWidth: nil)
        var expected = [Float](repeating: 0, count: ref.count)
        for y in 0..<oh {
            for x in 0..<ow {
                for ch in 0..<c { expected[((y * (c / 32) + ch / 32) * ow + x) * 32 + ch % 32] = ref[(y * ow + x) * c + ch] }
            }
        }
        let tx = TorchResample.cubicTaps(input: w, output: ow), ty = TorchResample.cubicTaps(input: h, output: oh)
        let ix = tx.index.map { Int32($0) }, iy = ty.index.map { Int32($0) }
        var rows = [Float](repeating: .nan, count: h * ow * c), out = [Float](repeating: .nan, count: oh * ow * c)
        #expect(luhd_proj_bicubic_horizontal_blocked(src, 0, h / 2, w, c, ow, ix, tx.weight, &rows) == 1)
        #expect(luhd_proj_bicubic_horizontal_blocked(src, h / 2, h, w, c, ow, ix, tx.weight, &rows) == 1)
        #expect(luhd_proj_bicubic_vertical_blocked(rows, ow, c, 0, oh / 3, iy, ty.weight, &out) == 1)
        #expect(luhd_proj_bicubic_vertical_blocked(rows, ow, c, oh / 3, oh, iy, ty.weight, &out) == 1)
        #expect(firstDifference(out, expected) == nil)
        // Channel counts the blocked passes do not take: nothing written.
        var untouched = [Float](repeating: .nan, count: h * ow * 33)
        #expect(luhd_proj_bicubic_horizontal_blocked(src, 0, h, w, 33, ow, ix, tx.weight, &untouched) == 0)
        #expect(untouched.allSatisfy { $0.isNaN })
    }

    @Test func vdimSizedUpsampleMatchesAcrossInstructionSets() throws {
        // Full VDIM channel count, both passes, AVX2 vs AVX-512 tables (no FMA: identical bits).
        guard let avx512 = luhd_kernels_avx512()?.pointee, let avx2 = luhd_kernels_avx2()?.pointee else { return }
        var rng = TestRandom(seed: 77)
        let c = 1024, h = 24, w = 24, oh = 48, ow = 48
        let src = rng.floats(c * h * w)
        let tx = TorchResample.cubicTaps(input: w, output: ow), ty = TorchResample.cubicTaps(input: h, output: oh)
        let ix = tx.index.map { Int32($0) }, iy = ty.index.map { Int32($0) }
        func run(_ k: luhd_kernels) -> [Float] {
            var rows = [Float](repeating: 0, count: h * ow * c), out = [Float](repeating: 0, count: oh * ow * c)
            k.bicubic_horizontal(src, 0, h, w, c, ow, ix, tx.weight, &rows)
            k.bicubic_vertical(rows, ow, c, 0, oh, iy, ty.weight, &out)
            return out
        }
        #expect(firstDifference(run(avx512), run(avx2)) == nil)
    }
}
