@testable import LlavaUHD
import Testing
import TestSupport

/// The Hiwin projector's int8 products (`MatrixArithmetic.int8`: the attention's value heads
/// and out_proj, cat_proj and proj against load-time Q8_0 copies, x
/// quantized per block of 32) against the exact projector on the upstream cases' own CLIP
/// features. Bound: the tokens within 2e-2 of the exact path's relative to their largest
/// magnitude (`relativeMaxError`), the bound of the fast vision path (FastVisionTests), with
/// each way of projecting the levels (the tiny models pick per pixel, the real ones pool the
/// 2x and 4x levels first). Both kernels: the AVX-512 VNNI product (skipped without it) and the f32
/// fallback (`.f32AVX2`).
@Suite(.serialized) struct Int8ProjectorTests {
    static let bound: Float = 2e-2

    @Test(arguments: ["coffee-v2-mask7", "chelsea-qwen2-mask5"], [LevelProjection.Method.projectPixels, .poolThenProject])
    func tokensWithinBoundOfExact(_ name: String, _ method: LevelProjection.Method) throws {
        let k = try UpstreamCase(name)
        let context = ComputeContext(threads: 2)
        let exact = try HiwinProjector(config: k.config, weights: k.weights, levelMethod: method)
            .project(k.views, context: context).flatMap { $0 }
        for kernel in [QuantKernel.int8VNNI, .f32AVX2] {
            guard kernel.isAvailable else {
                print("\(name): \(kernel) not available on this CPU, not run")
                continue
            }
            let projector = try HiwinProjector(config: k.config, weights: k.weights, levelMethod: method, arithmetic: .int8,
                                               quantKernel: kernel, threads: 2)
            #expect(projector.resampler.int8 != nil && projector.output.int8 != nil)
            let fast = try projector.project(k.views, context: context).flatMap { $0 }
            let error = relativeMaxError(fast, exact)
            print("\(name) \(method) int8 projector (\(kernel)): tokens rel err \(error)")
            #expect(error <= Self.bound, "\(name) \(method) \(kernel): max|int8 − exact| / max|exact| = \(error)")
        }
    }

    /// A `StageClock` in the context gets every timed part of a call, with the arithmetic of
    /// the shapes it ran on.
    @Test func stageClockCountsTheParts() throws {
        let k = try UpstreamCase("coffee-v2-mask7")
        let clock = StageClock()
        var context = ComputeContext(threads: 2)
        context.stageClock = clock
        _ = try k.config.makeProjector(weights: k.weights).project(k.views, context: context)
        let e = Double(k.config.embedDim), rows = Double(k.views.count * k.config.tokensPerView)
        let parts = Dictionary(uniqueKeysWithValues: clock.entries.map { ($0.name, $0) })
        #expect(parts["Hiwin cat_proj"]?.operations == 2 * rows * 4 * e * e)
        #expect(parts["Hiwin proj"]?.operations == 2 * rows * e * e)
        #expect(parts["Hiwin value heads"]?.operations == 2 * rows * 4 * e * e)
        #expect(parts["VDIM JBU upsampling"]?.calls == 2 * k.views.count)
        #expect(clock.entries.allSatisfy { $0.seconds >= 0 && $0.calls > 0 })
    }
}
