import Foundation
import LlavaUHD
import Testing
import TestSupport

/// Weight validation at init, and tied output heads: every tensor is checked once when the
/// decoder is built, with errors naming the tensor; a tied head reads `model.embed_tokens`.
@Suite struct DecoderWeightsTests {
    static let llama = Fixtures.root + "/hf/llama"
    static let qwen = Fixtures.root + "/hf/qwen2"

    /// Writes `tensors` as one safetensors file (F32, or F16 rounding to nearest) in a fresh
    /// temporary directory.
    static func writeModel(_ tensors: [(String, [Int], [Float])], f16: Bool = false) throws -> String {
        let dir = NSTemporaryDirectory() + "luhd-lang-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var header = SafetensorsWriter()
        for (name, shape, values) in tensors {
            header.add(name, dtype: f16 ? .f16 : .f32, shape: shape, byteCount: (f16 ? 2 : 4) * values.count)
        }
        var data = Data(header.header())
        for (_, _, values) in tensors {
            if f16 {
                values.map { Float16($0) }.withUnsafeBytes { data.append(contentsOf: $0) }
            } else {
                values.withUnsafeBytes { data.append(contentsOf: $0) }
            }
        }
        try data.write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        return dir
    }

    static func tensors(of directory: String) throws -> [(String, [Int], [Float])] {
        let store = try WeightStore(directory: directory)
        return try store.names.map { name in
            let t = try store.tensor(name)
            return (name, t.shape, t.floats())
        }
    }

    static func status(_ body: () throws -> Void) -> Status? {
        do { try body(); return nil } catch let e as LlavaError { return e.status } catch { return nil }
    }

    @Test func tiedHeadReadsTheEmbeddingTable() throws {
        var config = try huggingFaceConfig(Self.llama)
        let original = try Self.tensors(of: Self.llama)
        let embed = try #require(original.first { $0.0 == "model.embed_tokens.weight" })
        // Untied, with lm_head := embed_tokens, versus tied without any lm_head.
        let untiedDir = try Self.writeModel(original.map { $0.0 == "lm_head.weight" ? ($0.0, $0.1, embed.2) : $0 })
        let tiedDir = try Self.writeModel(original.filter { $0.0 != "lm_head.weight" })
        defer { try? FileManager.default.removeItem(atPath: untiedDir); try? FileManager.default.removeItem(atPath: tiedDir) }

        #expect(Self.status { _ = try TransformerDecoder(config: config, weights: WeightStore(directory: tiedDir)) } == .missingTensor)
        let untied = try TransformerDecoder(config: config, weights: WeightStore(directory: untiedDir))
        config.tieWordEmbeddings = true
        let tied = try TransformerDecoder(config: config, weights: WeightStore(directory: tiedDir))
        let ids = [5, 9, 77, 300]
        let a = try untied.eval(tokens: ids, cache: KVCache(config: config, capacity: 8), logits: .all, context: testContext())
        let b = try tied.eval(tokens: ids, cache: KVCache(config: config, capacity: 8), logits: .all, context: testContext())
        #expect(a == b)
    }

    /// F16 weights are widened exactly: a model stored in F16 gives the logits of the same
    /// model stored in F32 with every value rounded through F16.
    @Test func halfPrecisionWeights() throws {
        let config = try huggingFaceConfig(Self.llama)
        let original = try Self.tensors(of: Self.llama)
        let halfDir = try Self.writeModel(original, f16: true)
        let roundedDir = try Self.writeModel(original.map { ($0.0, $0.1, $0.2.map { Float(Float16($0)) }) })
        defer { try? FileManager.default.removeItem(atPath: halfDir); try? FileManager.default.removeItem(atPath: roundedDir) }
        let half = try TransformerDecoder(config: config, weights: WeightStore(directory: halfDir))
        let rounded = try TransformerDecoder(config: config, weights: WeightStore(directory: roundedDir))
        let ids = try NPYArray(path: Self.llama + "/input_ids.npy").ints
        let a = try half.eval(tokens: ids, cache: KVCache(config: config, capacity: 32), logits: .all, context: testContext())
        let b = try rounded.eval(tokens: ids, cache: KVCache(config: config, capacity: 32), logits: .all, context: testContext())
        #expect(relativeMaxError(a, b) <= 1e-6)
        // One decoded position reads the weights through the matrix-vector path.
        let cacheA = try KVCache(config: config, capacity: 32), cacheB = try KVCache(config: config, capacity: 32)
        _ = try half.eval(tokens: ids, cache: cacheA, logits: .none, context: testContext())
        _ = try rounded.eval(tokens: ids, cache: cacheB, logits: .none, context: testContext())
        let stepA = try half.eval(tokens: [7], cache: cacheA, context: testContext())
        let stepB = try rounded.eval(tokens: [7], cache: cacheB, context: testContext())
        #expect(relativeMaxError(stepA, stepB) <= 1e-6)
    }

    @Test func initChecksEveryTensor() throws {
        let store = try WeightStore(directory: Self.llama)
        let config = try huggingFaceConfig(Self.llama)
        /// The status of building the decoder over `store` from `config` changed by `change`.
        func status(_ change: (inout LanguageModelConfig) -> Void) -> Status? {
            var changed = config
            change(&changed)
            return Self.status { _ = try TransformerDecoder(config: changed, weights: store) }
        }
        // Sizes that contradict the tensors.
        #expect(status { $0.intermediateSize += 1 } == .tensorMismatch)
        #expect(status { $0.layerCount = 1 } == .tensorMismatch)
        #expect(status { $0.layerCount = 3 } == .missingTensor)
        // Architecture vs biases.
        #expect(status { $0.architecture = .qwen2 } == .missingTensor)
        var qwenAsLlama = try huggingFaceConfig(Self.qwen)
        qwenAsLlama.architecture = .llama
        #expect(Self.status { _ = try TransformerDecoder(config: qwenAsLlama, weights: WeightStore(directory: Self.qwen)) } == .unsupported)
        // Inconsistent configs.
        #expect(status { $0.kvHeadCount = 3 } == .badConfig)
        #expect(status { $0.ropeTheta = 0 } == .badConfig)
        // A missing layer tensor is named.
        let dir = try Self.writeModel(try Self.tensors(of: Self.llama).filter { $0.0 != "model.layers.1.mlp.up_proj.weight" })
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            _ = try TransformerDecoder(config: config, weights: WeightStore(directory: dir))
            Issue.record("a missing tensor was accepted")
        } catch {
            #expect(error.status == .missingTensor)
            #expect(error.message.contains("model.layers.1.mlp.up_proj.weight"))
        }
    }
}
