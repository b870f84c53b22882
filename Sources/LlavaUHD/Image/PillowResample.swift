#if canImport(Glibc)
import Glibc
#endif

/// Pillow's `Image.resize(size, Image.Resampling.BICUBIC)` on RGB8, bit for bit.
///
/// This is how upstream resizes every image (pre-resize, overview, refine image), so the
/// views must match it exactly: any 1-LSB difference reaches every later stage. What Pillow
/// does (src/libImaging/Resample.c, `ImagingResample`, and `Image.resize` in Image.py):
/// * a separable convolution with the cubic kernel a = −0.5 and support 2, widened by the
///   downscale factor (so downscaling averages, i.e. antialiases);
/// * per output index, the taps are the input indices `int(center ± support + 0.5)` (clamped
///   to the image), the weights are normalised to sum 1 in double and then quantised to
///   22 fractional bits (`PRECISION_BITS`), rounding half away from zero;
/// * each pass accumulates `pixel · weight` in 32-bit integers starting from 2²¹ (rounding),
///   shifts right by 22 and clamps to 0…255, so the intermediate image is 8-bit;
/// * a pass whose size does not change is skipped, and an unchanged size returns a copy;
/// * the order of the passes depends on the Pillow version (`PassOrder`): up to 12.1 the
///   horizontal pass always runs first (only on the input rows the vertical pass reads); 12.2
///   and 12.3 run the vertical pass first for images taller than 100× their width whose height
///   shrinks; from 13.0 the vertical pass runs first whenever the height shrinks by more than
///   twice as many pixels as the width. The order changes results by ±1 here and there,
///   because each pass rounds to 8 bits.
package enum PillowResample {
    /// Which Pillow release's choice of pass order to reproduce.
    package enum PassOrder: Sendable, Equatable {
        /// Pillow ≤ 12.1: horizontal, then vertical.
        case horizontalFirst
        /// Pillow 12.2–12.3 (`Image.resize`): vertical first when height > 100·width and the
        /// height shrinks.
        case tallImagesVerticalFirst
        /// Pillow ≥ 13.0 (`ImagingResampleInner`): vertical first when the height shrinks by
        /// more than twice the width's shrink, in pixels.
        case adaptive

        /// Whether the vertical pass runs first for this resize.
        func verticalFirst(from w: Int, _ h: Int, to outW: Int, _ outH: Int) -> Bool {
            switch self {
            case .horizontalFirst: return false
            case .tallImagesVerticalFirst: return h > w * 100 && outH < h
            case .adaptive: return h - outH > 0 && h - outH > (w - outW) * 2
            }
        }
    }

    /// The pass order of the Pillow the reference fixtures were made with.
    package static let defaultPassOrder = PassOrder.adaptive

    /// Fractional bits of the quantised weights.
    static let precisionBits = 22

    /// The taps of one pass: for output index i, `count[i]` weights `weights[i·stride ..<]`
    /// applied to input indices `first[i] ..< first[i] + count[i]`.
    struct Taps {
        var first: [Int32]
        var count: [Int32]
        var weights: [Int32]
        var stride: Int

        /// Calls `body` with pointers to `first`, `count` and `weights` (each non-empty: one
        /// entry or `stride` weights per output index).
        func withPointers<R>(_ body: (_ first: UnsafePointer<Int32>, _ count: UnsafePointer<Int32>,
                                      _ weights: UnsafePointer<Int32>) -> R) -> R {
            first.withUnsafeBufferPointer { f in
                count.withUnsafeBufferPointer { c in
                    weights.withUnsafeBufferPointer { w in body(f.baseAddress!, c.baseAddress!, w.baseAddress!) }
                }
            }
        }
    }

    /// Pillow's cubic convolution kernel with a = −0.5, evaluated in double in its order.
    @inline(__always)
    static func cubic(_ x0: Double) -> Double {
        let a = -0.5
        let x = x0 < 0 ? -x0 : x0
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole input range (box 0…inSize).
    static func taps(inSize: Int, outSize: Int) -> Taps {
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 2 * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        let inverse = 1 / filterScale
        var first = [Int32](repeating: 0, count: outSize)
        var count = [Int32](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * stride)
        var k = [Double](repeating: 0, count: stride)
        let one = Double(1 << precisionBits)
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            let n = hi - lo
            var sum = 0.0
            for t in 0..<n {
                let w = cubic((Double(t + lo) - center + 0.5) * inverse)
                k[t] = w
                sum += w
            }
            for t in 0..<n {
                let w = sum != 0 ? k[t] / sum : k[t]
                weights[i * stride + t] = Int32(w < 0 ? -0.5 + w * one : 0.5 + w * one)
            }
            first[i] = Int32(lo)
            count[i] = Int32(n)
        }
        return Taps(first: first, count: count, weights: weights, stride: stride)
    }

    /// Resizes `image` to `size` exactly as Pillow's BICUBIC filter does. `threads` splits the
    /// rows (the result does not depend on it). Throws `.invalidArgument` for an empty image or
    /// target, `.imageTooLarge` for a target above 2³⁰ pixels.
    package static func bicubic(_ image: RGBImage, to size: PixelSize, threads: Int = 1,
                               order: PassOrder = defaultPassOrder) throws(LlavaError) -> RGBImage {
        guard size.width >= 1, size.height >= 1 else {
            throw LlavaError(.invalidArgument, "resize target \(size) must have both sides ≥ 1")
        }
        guard image.width >= 1, image.height >= 1 else {
            throw LlavaError(.invalidArgument, "cannot resize an empty \(image.width)x\(image.height) image")
        }
        guard size.width <= 1 << 20, size.height <= 1 << 20, size.width * size.height <= 1 << 30 else {
            throw LlavaError(.imageTooLarge, "resize target \(size) is too large")
        }
        let w = image.width, h = image.height
        if size.width == w && size.height == h { return image }
        if order.verticalFirst(from: w, h, to: size.width, size.height) {
            let tall = try resample(image, width: w, height: size.height, threads: threads)
            return try resample(tall, width: size.width, height: size.height, threads: threads)
        }
        return try resample(image, width: size.width, height: size.height, threads: threads)
    }

    /// `ImagingResampleInner` in horizontal-first order: horizontal pass (if the width changes)
    /// over the rows the vertical pass needs, then the vertical pass (if the height changes).
    /// (Vertical-first is the same function called twice, each call doing one pass.)
    /// Throws `.outOfMemory` when a pass's output cannot be allocated.
    static func resample(_ image: RGBImage, width outW: Int, height outH: Int, threads: Int) throws(LlavaError) -> RGBImage {
        let inW = image.width, inH = image.height
        let needHorizontal = outW != inW, needVertical = outH != inH
        if !needHorizontal && !needVertical { return image }
        var vertical = taps(inSize: inH, outSize: outH)
        var source = image
        if needHorizontal {
            let firstRow = Int(vertical.first[0])
            let lastRow = Int(vertical.first[outH - 1] + vertical.count[outH - 1])
            if needVertical {
                for i in 0..<outH { vertical.first[i] -= Int32(firstRow) }
            }
            let rows = needVertical ? lastRow - firstRow : inH
            let rowOffset = needVertical ? firstRow : 0
            let horizontal = taps(inSize: inW, outSize: outW)
            let pixels: [UInt8] = try Allocation.array(count: outW * rows * 3,
                                                       what: "a \(outW)x\(rows) resize pass") { out in
                image.pixels.withUnsafeBufferPointer { src in
                    horizontalPass(src.baseAddress!, inWidth: inW, rowOffset: rowOffset, rows: rows,
                                   taps: horizontal, outWidth: outW, into: out.baseAddress!, threads: threads)
                }
            }
            source = RGBImage(width: outW, height: rows, pixels: pixels)
        }
        guard needVertical else { return source }
        let rowBytes = source.width * 3
        let pixels: [UInt8] = try Allocation.array(count: rowBytes * outH,
                                                   what: "a \(source.width)x\(outH) resize pass") { out in
            source.pixels.withUnsafeBufferPointer { src in
                verticalPass(src.baseAddress!, rowBytes: rowBytes, taps: vertical, outHeight: outH,
                             into: out.baseAddress!, threads: threads)
            }
        }
        return RGBImage(width: source.width, height: outH, pixels: pixels)
    }

    /// Clamps an accumulator to 0…255 after dropping the fractional bits (Pillow's `clip8`).
    @inline(__always)
    static func clip8(_ s: Int32) -> UInt8 {
        let v = s >> Int32(precisionBits)
        return v < 0 ? 0 : v > 255 ? 255 : UInt8(truncatingIfNeeded: v)
    }

    /// Output rows `0..<rows` of width `outWidth` from input rows `rowOffset ..< rowOffset+rows`.
    static func horizontalPass(_ src: UnsafePointer<UInt8>, inWidth: Int, rowOffset: Int, rows: Int, taps: Taps,
                               outWidth: Int, into dst: UnsafeMutablePointer<UInt8>, threads: Int) {
        let out = SendablePointer(dst)
        let parts = chunks(rows, parts: rows >= 32 ? threads * 4 : 1)
        taps.withPointers { first, count, weights in
            let stride = taps.stride
            parallelFor(parts.count, threads: threads) { part in
                for r in parts[part] {
                    let line = src + (rowOffset + r) * inWidth * 3
                    let o = out.p + r * outWidth * 3
                    for x in 0..<outWidth {
                        let k = weights + x * stride
                        var p = line + Int(first[x]) * 3
                        var s0: Int32 = 1 << 21, s1: Int32 = 1 << 21, s2: Int32 = 1 << 21
                        for t in 0..<Int(count[x]) {
                            let c = k[t]
                            s0 &+= Int32(p[0]) &* c
                            s1 &+= Int32(p[1]) &* c
                            s2 &+= Int32(p[2]) &* c
                            p += 3
                        }
                        o[3 * x] = clip8(s0)
                        o[3 * x + 1] = clip8(s1)
                        o[3 * x + 2] = clip8(s2)
                    }
                }
            }
        }
    }

    /// Output rows `0..<outHeight`, each a weighted sum of input rows (all `rowBytes` bytes of a
    /// row are independent, so they are processed 16 at a time).
    static func verticalPass(_ src: UnsafePointer<UInt8>, rowBytes: Int, taps: Taps, outHeight: Int,
                             into dst: UnsafeMutablePointer<UInt8>, threads: Int) {
        let out = SendablePointer(dst)
        let parts = chunks(outHeight, parts: outHeight >= 32 ? threads * 4 : 1)
        taps.withPointers { first, count, weights in
            let stride = taps.stride
            parallelFor(parts.count, threads: threads) { part in
                let half = SIMD16<Int32>(repeating: 1 << 21)
                let zero = SIMD16<Int32>(repeating: 0), top = SIMD16<Int32>(repeating: 255)
                for y in parts[part] {
                    let k = weights + y * stride
                    let n = Int(count[y])
                    let base = src + Int(first[y]) * rowBytes
                    let o = out.p + y * rowBytes
                    var x = 0
                    while x + 16 <= rowBytes {
                        var s = half
                        for t in 0..<n {
                            let v = UnsafeRawPointer(base + t * rowBytes + x).loadUnaligned(as: SIMD16<UInt8>.self)
                            s &+= SIMD16<Int32>(truncatingIfNeeded: v) &* SIMD16<Int32>(repeating: k[t])
                        }
                        var v = s &>> SIMD16<Int32>(repeating: Int32(precisionBits))
                        v.replace(with: zero, where: v .< zero)
                        v.replace(with: top, where: v .> top)
                        UnsafeMutableRawPointer(o + x).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v),
                                                                  as: SIMD16<UInt8>.self)
                        x += 16
                    }
                    while x < rowBytes {
                        var s: Int32 = 1 << 21
                        for t in 0..<n { s &+= Int32(base[t * rowBytes + x]) &* k[t] }
                        o[x] = clip8(s)
                        x += 1
                    }
                }
            }
        }
    }
}
