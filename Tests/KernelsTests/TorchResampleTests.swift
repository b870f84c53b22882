import LlavaUHD
import Testing
import TestSupport

/// `TorchResample` against PyTorch itself: `F.interpolate(mode='bicubic', align_corners=False)`
/// (with `size=` and with `scale_factor=`) and `F.adaptive_avg_pool2d`, on the random inputs of
/// `Tests/Fixtures/hf/torch-resample` (made by scripts/fixtures/make_hf_fixtures.py; meta.json lists the
/// cases). Both compute the same float32 formula, so they must agree to float rounding:
/// max|a − ref| ≤ 1e-5 · max|ref| per case.
@Suite struct TorchResampleTests {
    static let directory = Fixtures.root + "/hf/torch-resample"
    static let tolerance: Float = 1e-5

    /// One case of meta.json: sizes, optional scale factors and the input/output arrays.
    struct Case {
        let name: String
        let channels: Int
        let height: Int, width: Int
        let outHeight: Int, outWidth: Int
        let scale: (height: Double, width: Double)?
        let input: [Float]
        let output: [Float]
    }

    static func cases(_ section: String) throws -> [Case] {
        let meta = try Fixtures.json(directory + "/meta.json")
        let list = try #require(meta[section]?["cases"]?.arrayValue, "meta.json has no \(section).cases")
        return try list.map { c in
            let name = try #require(c["name"]?.stringValue)
            let inSize = c["in_hw"]?.arrayValue?.compactMap { $0.intValue }
            let outSize = c["out_hw"]?.arrayValue?.compactMap { $0.intValue }
            let inHW = try #require(inSize, "\(name): in_hw"), outHW = try #require(outSize, "\(name): out_hw")
            try #require(inHW.count == 2 && outHW.count == 2, "\(name): sizes")
            let channels = try #require(c["channels"]?.intValue)
            var scale: (Double, Double)? = nil
            if let s = c["scale_factor"]?.arrayValue?.compactMap({ $0.doubleValue }), s.count == 2 { scale = (s[0], s[1]) }
            let inputFile = try #require(c["input"]?.stringValue)
            let outputFile = try #require(c["output"]?.stringValue)
            let input = try NPYArray(path: directory + "/" + inputFile)
            let output = try NPYArray(path: directory + "/" + outputFile)
            #expect(input.shape == [channels] + inHW, "\(name): input shape")
            #expect(output.shape == [channels] + outHW, "\(name): output shape")
            return Case(name: name, channels: channels, height: inHW[0], width: inHW[1],
                        outHeight: outHW[0], outWidth: outHW[1], scale: scale,
                        input: input.floats, output: output.floats)
        }
    }

    /// `[C, H, W]` → `[H, W, C]`.
    static func toHWC(_ x: [Float], channels: Int, height: Int, width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for c in 0..<channels { for y in 0..<height { for v in 0..<width {
            out[(y * width + v) * channels + c] = x[(c * height + y) * width + v]
        } } }
        return out
    }

    /// `[H, W, C]` → `[C, H, W]`.
    static func toCHW(_ x: [Float], channels: Int, height: Int, width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for c in 0..<channels { for y in 0..<height { for v in 0..<width {
            out[(c * height + y) * width + v] = x[(y * width + v) * channels + c]
        } } }
        return out
    }

    static func bicubic(_ k: Case, layout: TorchResample.Layout) -> [Float] {
        let source = layout == .chw ? k.input : toHWC(k.input, channels: k.channels, height: k.height, width: k.width)
        var out = [Float](repeating: .nan, count: k.channels * k.outHeight * k.outWidth)
        source.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                TorchResample.bicubic(src.baseAddress!, layout: layout, channels: k.channels,
                                      height: k.height, width: k.width,
                                      outHeight: k.outHeight, outWidth: k.outWidth, into: dst.baseAddress!,
                                      scaleHeight: k.scale.map { Float($0.height) },
                                      scaleWidth: k.scale.map { Float($0.width) })
            }
        }
        return layout == .chw ? out : toCHW(out, channels: k.channels, height: k.outHeight, width: k.outWidth)
    }

    @Test func bicubicCHWMatchesTorch() throws {
        let all = try Self.cases("bicubic")
        #expect(all.count >= 20)
        for k in all {
            let err = relativeMaxError(Self.bicubic(k, layout: .chw), k.output)
            #expect(err <= Self.tolerance, "bicubic \(k.name) (CHW): relative error \(err)")
        }
    }

    @Test func bicubicHWCMatchesTorch() throws {
        for k in try Self.cases("bicubic") {
            let err = relativeMaxError(Self.bicubic(k, layout: .hwc), k.output)
            #expect(err <= Self.tolerance, "bicubic \(k.name) (HWC): relative error \(err)")
        }
    }

    /// With `scale_factor=s` torch's output size is ⌊in·s⌋; the fixture's sizes follow that rule.
    @Test func scaleFactorCasesUseFlooredSizes() throws {
        let scaled = try Self.cases("bicubic").filter { $0.scale != nil }
        #expect(scaled.count >= 5)
        for k in scaled {
            guard let s = k.scale else { continue }
            #expect(k.outHeight == Int((Double(k.height) * s.height).rounded(.down)), "\(k.name)")
            #expect(k.outWidth == Int((Double(k.width) * s.width).rounded(.down)), "\(k.name)")
        }
    }

    @Test func adaptiveAvgPoolMatchesTorch() throws {
        let all = try Self.cases("adaptive_avg_pool")
        #expect(all.count >= 10)
        for k in all {
            var out = [Float](repeating: .nan, count: k.channels * k.outHeight * k.outWidth)
            k.input.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    TorchResample.adaptiveAvgPool(src.baseAddress!, channels: k.channels, height: k.height,
                                                  width: k.width, outHeight: k.outHeight, outWidth: k.outWidth,
                                                  into: dst.baseAddress!)
                }
            }
            let err = relativeMaxError(out, k.output)
            #expect(err <= Self.tolerance, "adaptive_avg_pool \(k.name): relative error \(err)")
        }
    }
}
