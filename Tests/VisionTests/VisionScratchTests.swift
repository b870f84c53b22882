@testable import LlavaUHD
import Synchronization
import Testing
import TestSupport

/// `VisionScratch`: buffers kept between calls give the same results, bit for bit, as fresh ones,
/// for the ViT and the Hiwin projector (VDIM's JBU maps), when the kept buffers are larger than
/// the call needs (a big image, then a smaller one, then the big one again), and with two
/// "sessions" running on two threads at the same time against one shared encoder and projector
/// (a model is shared; a session is used by one thread at a time), with a scratch each and with
/// one shared scratch (the model's).
@Suite struct VisionScratchTests {
    @Test func keptBuffersGiveTheResultsOfFreshOnesOnTwoThreads() throws {
        let caseName = "chelsea-qwen2-mask5"
        let store = try WeightStore(directory: Fixtures.model(caseName))
        let encoder = try CLIPVisionEncoder(store: store, prefix: CLIPVisionEncoderTests.prefix,
                                            config: UpstreamCaseFiles.clipConfig(caseName))
        let projector = try ModelConfig(directory: Fixtures.model(caseName)).projector.makeProjector(weights: store)
        let views = try UpstreamCaseFiles.fixtureViews(caseName).map { CLIPNormalization.openAI.normalize($0) }
        try #require(views.count >= 2)
        // Calls of different sizes: all views, the last (overview) alone, all views again.
        let calls = [views, [views[views.count - 1]], views]

        @Sendable func vision(_ pixels: [PixelTensor], scratch: VisionScratch?) throws -> [Float] {
            var context = ComputeContext(threads: 2)
            context.visionScratch = scratch
            let features = try encoder.encode(pixels, context: context)
            var inputs: [ProjectorInput] = []
            for (p, f) in zip(pixels, features) {
                inputs.append(try ProjectorInput(rows: f.rows, columns: f.columns, channels: f.channels, features: f.values,
                                                 pixelHeight: p.height, pixelWidth: p.width, pixels: p.values))
            }
            return features.flatMap(\.values) + (try projector.project(inputs, context: context).flatMap { $0 })
        }
        let fresh = try calls.map { try vision($0, scratch: nil) }

        // Each thread with its own scratch, then both sharing one (a model's, used by its
        // sessions on two threads at once: each call takes the kept buffers or allocates).
        for sharedScratch in [nil, VisionScratch()] {
            let results = Mutex<[[[Float]]]>([[], []])
            onThreads(2) { session in
                let scratch = sharedScratch ?? VisionScratch()
                var mine: [[Float]] = []
                for pixels in calls { mine.append((try? vision(pixels, scratch: scratch)) ?? []) }
                results.withLock { $0[session] = mine }
            }
            for (session, outputs) in results.withLock({ $0 }).enumerated() {
                #expect(outputs.count == calls.count)
                for (call, output) in outputs.enumerated() {
                    #expect(output == fresh[call], "session \(session), call \(call), shared scratch: \(sharedScratch != nil)")
                }
            }
        }
    }

    /// A kept object serves only calls it fits; larger calls get new buffers.
    @Test func encoderBuffersFitOnlyCallsTheyHaveRoomFor() {
        let config = CLIPVisionConfig(hiddenSize: 64, layerCount: 2, headCount: 4, intermediateSize: 256)
        let big = EncoderBuffers.Shape(config: config, tokens: 600, maxViewTokens: 300, attentionTasks: 8, threads: 1)
        let small = EncoderBuffers.Shape(config: config, tokens: 100, maxViewTokens: 100, attentionTasks: 4, threads: 1)
        let scratch = VisionScratch()
        scratch.keep(EncoderBuffers(small))
        #expect(scratch.takeEncoderBuffers(fitting: big) == nil)
        let kept = scratch.takeEncoderBuffers(fitting: small)
        #expect(kept != nil)
        #expect(scratch.takeEncoderBuffers(fitting: small) == nil, "taken out until kept again")
        scratch.keep(EncoderBuffers(big))
        #expect(scratch.takeEncoderBuffers(fitting: small)?.capacity == big)
    }
}
