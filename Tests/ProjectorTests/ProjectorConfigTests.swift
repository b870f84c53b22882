#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import Testing
import TestSupport

/// Choosing the projector from config.json, and the errors a bad config, checkpoint or input
/// gets (never a crash).
@Suite struct ProjectorConfigTests {
    static func config(_ model: String) throws -> ProjectorConfig { try ModelConfig(directory: Fixtures.model(model)).projector }

    static func status(_ body: () throws -> Void) -> Status? {
        do { try body() } catch let e as LlavaError { return e.status } catch { return nil }
        return .ok
    }

    @Test func readsTheFixtureModels() throws {
        let coffee = try Self.config("coffee-v2-mask7")
        #expect(coffee == ProjectorConfig(kind: .hiwin, featureScaleMask: 7, visionHiddenSize: 1024, embedDim: 256))
        #expect(coffee.projectedScales == [1, 2, 4] && coffee.vdimTopScale == 4 && coffee.headCount == 2)
        let qwen = try Self.config("chelsea-qwen2-mask5")
        #expect(qwen.kind == .hiwin && qwen.featureScaleMask == 5 && qwen.projectedScales == [1, 4])
        let v1 = try Self.config("rocket-v1")
        #expect(v1.kind == .uhdV1 && v1.projectedScales == [1] && v1.vdimTopScale == nil)
    }

    /// Masks upstream cannot run are refused by `validate()` (which `makeProjector` calls), with
    /// the statuses `ModelConfig` gives them when it reads config.json.
    @Test func masksUpstreamCannotRunAreRefused() throws {
        func status(_ mask: Int) -> Status? {
            Self.status { try ProjectorConfig(kind: .hiwin, featureScaleMask: mask, visionHiddenSize: 1024, embedDim: 4096).validate() }
        }
        for mask in [3, 5, 7] { #expect(status(mask) == .ok, "mask \(mask)") }
        for mask in [15, 9] { #expect(status(mask) == .unsupported, "mask \(mask)") }
        for mask in [6, 1, 4, 16, 0] { #expect(status(mask) == .badConfig, "mask \(mask)") }
        #expect(Self.status { try ProjectorConfig(kind: .uhdV1, featureScaleMask: 0, visionHiddenSize: 1024, embedDim: 100).validate() }
            == .badConfig)
    }

    /// A checkpoint holding only a mis-shaped `pos_embed`: one error naming the missing
    /// tensors and the mismatch.
    @Test func missingAndMisshapedTensorsAreNamed() throws {
        let path = "/tmp/llavauhd-projector-test-\(getpid()).safetensors"
        var header = SafetensorsWriter()
        header.add("model.mm_projector.pos_embed", dtype: .f32, shape: [2, 2])
        try header.write(to: path, data: [UInt8](repeating: 0, count: 16))
        defer { unlink(path) }
        let store = try WeightStore(paths: [path])
        for kind in [ProjectorConfig.Kind.hiwin, .uhdV1] {
            let config = ProjectorConfig(kind: kind, featureScaleMask: 7, visionHiddenSize: 1024, embedDim: 256)
            let result = Result { () throws(LlavaError) in try config.makeProjector(weights: store) }
            guard case .failure(let e) = result else {
                Issue.record("loading should fail")
                continue
            }
            #expect(e.status == .missingTensor)
            #expect(e.message.contains("model.mm_projector.attn.in_proj_weight"))
            #expect(e.message.contains("model.mm_projector.pos_embed has shape [2, 2], expected [144, 256]"))
            if kind == .hiwin {
                #expect(e.message.contains("model.mm_projector.upsampler.upsampler.up2.range_temp"))
                #expect(e.message.contains("model.mm_projector.features_4x_projector.weight"))
                #expect(!e.message.contains("features_8x"))
            } else {
                #expect(e.message.contains("model.mm_projector.kv_proj.weight"))
                #expect(!e.message.contains("upsampler"))
            }
        }
    }

    @Test func badInputsThrow() throws {
        #expect(Self.status { _ = try ProjectorInput(rows: 2, columns: 2, channels: 4, features: [0], pixelHeight: 0, pixelWidth: 0, pixels: []) }
            == .invalidArgument)
        #expect(Self.status { _ = try ProjectorInput(rows: 0, columns: 2, channels: 4, features: [], pixelHeight: 0, pixelWidth: 0, pixels: []) }
            == .invalidArgument)
        #expect(Self.status { _ = try ProjectorInput(rows: 1, columns: 1, channels: 1, features: [0], pixelHeight: 2, pixelWidth: 2, pixels: [0]) }
            == .invalidArgument)

        let model = Fixtures.model("small-noslice")
        let config = try ModelConfig(directory: model).projector
        let projector = try config.makeProjector(weights: WeightStore(directory: model))
        let context = ComputeContext(threads: 1)
        // Wrong feature width.
        let narrow = try ProjectorInput(rows: 4, columns: 4, channels: 8, features: [Float](repeating: 0, count: 128),
                                        pixelHeight: 56, pixelWidth: 56, pixels: [Float](repeating: 0, count: 3 * 56 * 56))
        #expect(Self.status { _ = try projector.project([narrow], context: context) } == .invalidArgument)
        // One patch column: VDIM's reflect padding needs 2.
        let thin = try ProjectorInput(rows: 6, columns: 1, channels: 1024, features: [Float](repeating: 0.5, count: 6 * 1024),
                                      pixelHeight: 84, pixelWidth: 14, pixels: [Float](repeating: 0, count: 3 * 84 * 14))
        #expect(Self.status { _ = try projector.project([thin], context: context) } == .invalidArgument)
        #expect(Self.status { _ = try projector.pyramid(thin, context: context) } == .invalidArgument)
        // No pixels for the guidance.
        let blind = try ProjectorInput(rows: 4, columns: 4, channels: 1024, features: [Float](repeating: 0.5, count: 16 * 1024),
                                       pixelHeight: 0, pixelWidth: 0, pixels: [])
        #expect(Self.status { _ = try projector.project([blind], context: context) } == .invalidArgument)
        // An abort callback stops the work.
        let aborting = ComputeContext(threads: 1, shouldAbort: { true })
        let ok = try ProjectorInput(rows: 4, columns: 4, channels: 1024, features: [Float](repeating: 0.5, count: 16 * 1024),
                                    pixelHeight: 56, pixelWidth: 56, pixels: [Float](repeating: 0, count: 3 * 56 * 56))
        #expect(Self.status { _ = try projector.project([ok], context: aborting) } == .cancelled)
        #expect(try projector.project([], context: context).isEmpty)
    }
}
