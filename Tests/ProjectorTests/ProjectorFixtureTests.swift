@testable import LlavaUHD
import Testing
import TestSupport

/// VDIM and the Hiwin / v1 projectors against the upstream fixtures (Tests/Fixtures/upstream:
/// tiny random models run through the upstream PyTorch code in float32; model weights BF16,
/// upcast). Tolerances from the fixtures' README: fed the full-precision overview features,
/// every level and token matrix within max|a − b| ≤ 1e-4·max|ref|; fed the float16-rounded
/// slice features, within 1e-3·max|ref|.
@Suite(.serialized) struct ProjectorFixtureTests {
    static let v2Cases = ["coffee-v2-mask7", "tall-v2-mask7", "small-noslice", "chelsea-qwen2-mask5"]
    static let fullPrecision: Float = 1e-4
    static let float16Input: Float = 1e-3

    /// Compares one pyramid level with the fixture's subsample (`[P, C]` at flat positions
    /// `idx`) and per-channel means (`[C]`).
    static func compare(_ level: FeaturePyramid.Level, sub: [Float], idx: [Int], chmean: [Float],
                        tolerance: Float, _ what: String) {
        let c = level.channels, pixels = level.rows * level.columns
        var ours = [Float](repeating: 0, count: idx.count * c)
        for (i, p) in idx.enumerated() { for ch in 0..<c { ours[i * c + ch] = level.values[ch * pixels + p] } }
        var means = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            var s = 0.0
            for p in 0..<pixels { s += Double(level.values[ch * pixels + p]) }
            means[ch] = Float(s / Double(pixels))
        }
        let errSub = relativeMaxError(ours, sub), errMean = relativeMaxError(means, chmean)
        print("\(what): sub \(errSub), chmean \(errMean)")
        #expect(errSub <= tolerance, "\(what): subsample relative error \(errSub)")
        #expect(errMean <= tolerance, "\(what): channel-mean relative error \(errMean)")
    }

    @Test(arguments: v2Cases)
    func pyramidMatchesUpstream(_ name: String) throws {
        let k = try UpstreamCase(name)
        let projector = try k.config.makeProjector(weights: k.weights)
        let context = ComputeContext(threads: 2)
        let pyramid = try projector.pyramid(k.views[k.sliceCount], context: context)
        #expect(pyramid.levels.map(\.scale) == [1, 2, 4])
        let view = k.views[k.sliceCount]
        #expect(pyramid.levels[0].values == HiwinProjector.toCHW(view.features, height: view.rows, width: view.columns,
                                                                  channels: view.channels))
        for scale in [2, 4] {
            let level = try #require(pyramid.level(scale: scale))
            #expect(level.rows == view.rows * scale && level.columns == view.columns * scale)
            #expect(level.usedByProjector == (k.config.featureScaleMask & scale != 0))
            Self.compare(level, sub: try k.array("pyr\(scale)x_overview_sub").floats,
                         idx: try k.array("pyr\(scale)x_overview_idx").ints,
                         chmean: try k.array("pyr\(scale)x_overview_chmean").floats,
                         tolerance: Self.fullPrecision, "\(name) overview \(scale)x")
        }
        guard k.sliceCount > 0 else { return }
        for scale in [2, 4] {
            let sub = try k.array("pyr\(scale)x_slices_sub"), idx = try k.array("pyr\(scale)x_slices_idx").ints
            let chmean = try k.array("pyr\(scale)x_slices_chmean").floats
            let c = k.config.visionHiddenSize, p = idx.count
            for i in 0..<k.sliceCount {
                let level = try #require(try projector.pyramid(k.views[i], context: context).level(scale: scale))
                Self.compare(level, sub: Array(sub.floats[(i * p * c)..<((i + 1) * p * c)]), idx: idx,
                             chmean: Array(chmean[(i * c)..<((i + 1) * c)]),
                             tolerance: Self.float16Input, "\(name) slice \(i) \(scale)x")
            }
        }
    }

    /// Compares `project`'s tokens with `hiwin_overview` / `hiwin_slices`.
    static func checkTokens(_ k: UpstreamCase, _ tokens: [[Float]], _ what: String) throws {
        #expect(tokens.count == k.views.count)
        let overview = try k.array("hiwin_overview").floats
        let err = relativeMaxError(tokens[k.sliceCount], overview)
        print("\(k.name) \(what) overview tokens: \(err)")
        #expect(err <= fullPrecision, "\(k.name) \(what): overview tokens relative error \(err)")
        guard k.sliceCount > 0 else { return }
        let slices = try k.array("hiwin_slices").floats
        let per = slices.count / k.sliceCount
        for i in 0..<k.sliceCount {
            let e = relativeMaxError(tokens[i], Array(slices[(i * per)..<((i + 1) * per)]))
            print("\(k.name) \(what) slice \(i) tokens: \(e)")
            #expect(e <= float16Input, "\(k.name) \(what): slice \(i) tokens relative error \(e)")
        }
    }

    @Test(arguments: v2Cases + ["rocket-v1"])
    func tokensMatchUpstream(_ name: String) throws {
        let k = try UpstreamCase(name)
        let projector = try k.config.makeProjector(weights: k.weights)
        #expect(projector is HiwinProjector == (name != "rocket-v1"))
        let tokens = try projector.project(k.views, context: ComputeContext(threads: 2))
        #expect(tokens.allSatisfy { $0.count == 144 * k.config.embedDim })
        try Self.checkTokens(k, tokens, "automatic")
    }

    /// Each level is either projected at every pixel and then pooled, or pooled (with each
    /// pixel's LayerNorm scale from the Gram matrix, for upsampled levels through the JBU
    /// stage) and then projected. The tiny models (E 256 < C 1024) pick the first, the real
    /// ones (E 4096 > C) the second for the 2x and 4x levels. Both must match upstream.
    @Test(arguments: ["coffee-v2-mask7", "chelsea-qwen2-mask5", "rocket-v1"])
    func poolThenProjectMatchesUpstream(_ name: String) throws {
        let k = try UpstreamCase(name)
        let projector: any Projector = k.config.kind == .hiwin
            ? try HiwinProjector(config: k.config, weights: k.weights, levelMethod: .poolThenProject)
            : try UHDV1Projector(config: k.config, weights: k.weights, levelMethod: .poolThenProject)
        try Self.checkTokens(k, try projector.project(k.views, context: ComputeContext(threads: 2)), "pool-then-project")
    }

    /// A view's tokens do not depend on the other views of the call, nor on the thread count.
    @Test func viewsAreIndependent() throws {
        let k = try UpstreamCase("tall-v2-mask7")
        let projector = try k.config.makeProjector(weights: k.weights)
        let all = try projector.project(k.views, context: ComputeContext(threads: 2))
        let last = try projector.project([k.views[k.sliceCount]], context: ComputeContext(threads: 1))
        let first = try projector.project([k.views[0]], context: ComputeContext(threads: 1))
        #expect(relativeMaxError(last[0], all[k.sliceCount]) <= 1e-6)
        #expect(relativeMaxError(first[0], all[0]) <= 1e-6)
        let p1 = try projector.pyramid(k.views[0], context: ComputeContext(threads: 1))
        let p2 = try projector.pyramid(k.views[0], context: ComputeContext(threads: 2))
        #expect(p1.levels.map(\.values) == p2.levels.map(\.values))
    }
}
