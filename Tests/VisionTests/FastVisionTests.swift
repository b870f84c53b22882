@testable import LlavaUHD
import Testing
import TestSupport

/// The int8 vision path (`MatrixArithmetic.int8`: the tower's q/k/v, out, fc1 and fc2 products
/// and the Hiwin projector's attention value heads, out_proj, cat_proj and proj
/// against load-time Q8_0 copies, x quantized
/// per block of 32) against the exact path, end to end through the projector, on every upstream
/// case (the fixture's own views, the tiny model directory's weights). Bound: the projector output (every view's tokens) within 2e-2 of the
/// exact path's, relative to the exact output's largest magnitude (max|fast − exact| /
/// max|exact|, `relativeMaxError`). The int8 path is forced whatever `Precision.fast` would pick
/// on this CPU: the AVX-512 VNNI product (skipped on CPUs without it) and the f32 fallback
/// (`.f32AVX2`, everywhere).
@Suite(.serialized) struct FastVisionTests {
    static let bound: Float = 2e-2

    @Test(arguments: Fixtures.upstreamCases)
    func projectorOutputWithinBoundOfExact(_ caseName: String) throws {
        let store = try WeightStore(directory: Fixtures.model(caseName))
        let clip = try UpstreamCaseFiles.clipConfig(caseName)
        let prefix = CLIPVisionEncoderTests.prefix
        let projectorConfig = try ModelConfig(directory: Fixtures.model(caseName)).projector
        let pixels = try UpstreamCaseFiles.fixtureViews(caseName).map { CLIPNormalization.openAI.normalize($0) }
        let context = ComputeContext(threads: 2)

        func tokens(_ encoder: CLIPVisionEncoder, _ projector: any Projector) throws -> (features: [Float], tokens: [Float]) {
            let features = try encoder.encode(pixels, context: context)
            var inputs: [ProjectorInput] = []
            for (p, f) in zip(pixels, features) {
                inputs.append(try ProjectorInput(rows: f.rows, columns: f.columns, channels: f.channels, features: f.values,
                                                 pixelHeight: p.height, pixelWidth: p.width, pixels: p.values))
            }
            return (features.flatMap(\.values), try projector.project(inputs, context: context).flatMap { $0 })
        }

        let exact = try tokens(CLIPVisionEncoder(store: store, prefix: prefix, config: clip),
                               projectorConfig.makeProjector(weights: store))
        for kernel in [QuantKernel.int8VNNI, .f32AVX2] {
            guard kernel.isAvailable else {
                print("\(caseName): \(kernel) not available on this CPU, not run")
                continue
            }
            let encoder = try CLIPVisionEncoder(store: store, prefix: prefix, config: clip, arithmetic: .int8,
                                                quantKernel: kernel, threads: 2)
            #expect(encoder.int8CopyBytes > 0)
            let fast = try tokens(encoder, projectorConfig.makeProjector(weights: store, arithmetic: .int8,
                                                                         quantKernel: kernel, threads: 2))
            let eFeatures = relativeMaxError(fast.features, exact.features)
            let eTokens = relativeMaxError(fast.tokens, exact.tokens)
            print("\(caseName) int8 vision (\(kernel)): CLIP features rel err \(eFeatures), projector output rel err \(eTokens)")
            #expect(eTokens <= Self.bound,
                    "\(caseName) \(kernel): projector output max|fast − exact| / max|exact| = \(eTokens) > \(Self.bound)")
        }
    }
}
