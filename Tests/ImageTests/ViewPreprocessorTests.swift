import LlavaUHD
import TestSupport
import Testing

/// The views and normalised pixels of every upstream case: decode input.png, pre-resize,
/// slice and resize exactly as upstream (rgb_overview.npy / rgb_slices.npy), then CLIP
/// normalisation.
@Suite struct ViewPreprocessorTests {
    static func preprocessor(_ caseName: String, order: PillowResample.PassOrder = PillowResample.defaultPassOrder)
        throws -> ViewPreprocessor {
        let pre = try #require(UpstreamCaseFiles.manifest(caseName)["preprocess"])
        let options = SlicingOptions(preresizeLongSide: pre["preresize_long_side"]?.intValue ?? 0,
                                     maxSlices: try #require(pre["max_slice_nums"]?.intValue),
                                     scaleResolution: try #require(pre["scale_resolution"]?.intValue),
                                     patchSize: try #require(pre["patch_size"]?.intValue))
        return ViewPreprocessor(options: options, passOrder: order)
    }

    @Test(arguments: Fixtures.upstreamCases)
    func viewsArePixelExact(_ caseName: String) throws {
        let image = try ImageDecoder.decodeFile(Fixtures.upstream(caseName) + "/input.png")
        let expected = try UpstreamCaseFiles.fixtureViews(caseName)
        let pre = try Self.preprocessor(caseName)
        let plan = try pre.plan(for: image)
        for threads in [1, 2] {
            let views = try pre.views(of: image, plan: plan, threads: threads)
            try #require(views.count == expected.count)
            for (i, (v, e)) in zip(views, expected).enumerated() {
                #expect(v.width == e.width && v.height == e.height)
                let diff = PillowResampleTests.differences(v.pixels, e.pixels)
                #expect(diff == 0, "\(caseName) view \(i): \(diff) of \(e.pixels.count) bytes differ")
            }
        }
    }

    /// Which Pillow made the fixtures: the tall case's overview (height shrinks far more than
    /// the width) is exact only with Pillow ≥ 13's pass order.
    @Test func fixturesFollowPillow13PassOrder() throws {
        let caseName = "tall-v2-mask7"
        let image = try ImageDecoder.decodeFile(Fixtures.upstream(caseName) + "/input.png")
        let expected = try UpstreamCaseFiles.fixtureViews(caseName)
        for order in [PillowResample.PassOrder.adaptive, .horizontalFirst] {
            let pre = try Self.preprocessor(caseName, order: order)
            let overview = try #require(pre.views(of: image, plan: pre.plan(for: image)).last)
            let diff = PillowResampleTests.differences(overview.pixels, try #require(expected.last).pixels)
            print("tall-v2-mask7 overview with \(order): \(diff) bytes differ")
            #expect((diff == 0) == (order == .adaptive))
        }
    }

    /// CLIP normalisation of the fixture's own uint8 views: within 1e-6 of
    /// (v/255 − mean[c]) / std[c] computed in double, CHW.
    @Test(arguments: Fixtures.upstreamCases)
    func normalisation(_ caseName: String) throws {
        let pre = try #require(UpstreamCaseFiles.manifest(caseName)["preprocess"])
        let mean = try #require(pre["image_mean"]?.arrayValue).compactMap(\.doubleValue)
        let std = try #require(pre["image_std"]?.arrayValue).compactMap(\.doubleValue)
        #expect(CLIPNormalization.openAI.mean == mean.map(Float.init))
        #expect(CLIPNormalization.openAI.std == std.map(Float.init))
        var worst = 0.0
        for view in try UpstreamCaseFiles.fixtureViews(caseName) {
            let t = CLIPNormalization.openAI.normalize(view)
            #expect(t.width == view.width && t.height == view.height)
            let plane = view.width * view.height
            for i in 0..<plane {
                for c in 0..<3 {
                    let ref = (Double(view.pixels[3 * i + c]) / 255 - mean[c]) / std[c]
                    worst = max(worst, abs(Double(t.values[c * plane + i]) - ref))
                }
            }
        }
        print("\(caseName): normalised pixels max |diff| = \(worst)")
        #expect(worst <= 1e-6)
    }

    /// Bit-exact against transformers 4.37.2's CLIPImageProcessor (upstream's version) on every
    /// byte value of every channel (Tests/Fixtures/clip_norm/table.npy, made by
    /// scripts/fixtures/make_clip_norm_fixture.py).
    @Test func normalisationTableIsExact() throws {
        let table = try NPYArray(path: Fixtures.root + "/clip_norm/table.npy")
        #expect(table.shape == [3, 256])
        var bytes = [UInt8]()
        for v in 0..<256 { bytes += [UInt8(v), UInt8(v), UInt8(v)] }
        let t = CLIPNormalization.openAI.normalize(RGBImage(width: 16, height: 16, pixels: bytes))
        #expect(t.values.map(\.bitPattern) == table.floats.map(\.bitPattern))
    }

    @Test func mismatchedPlanThrows() throws {
        let image = RGBImage(width: 10, height: 10, pixels: [UInt8](repeating: 7, count: 300))
        let plan = try SlicePlan(inputSize: PixelSize(width: 11, height: 10))
        #expect(throws: LlavaError.self) { try ViewPreprocessor().views(of: image, plan: plan) }
        let (p, views) = try ViewPreprocessor().pixels(of: image)
        #expect(views.count == p.views.count)
        #expect(views.last?.width == p.overviewSize.width)
    }
}
