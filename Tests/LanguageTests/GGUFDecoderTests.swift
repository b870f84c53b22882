import Foundation
import LlavaUHD
import Testing
import TestSupport

/// The decoder built from GGUF files (`TransformerDecoder(gguf:)`): the tiny HF fixture models
/// converted by scripts/fixtures/make_gguf_llm_fixtures.py the way llama.cpp's converter does (LLaMA q/k
/// rows permuted to GGML's interleaved rotary order; Qwen2 as stored), checked against the
/// transformers outputs of Tests/Fixtures/hf: F32 and BF16 files within the float32 tolerance
/// 1e-4·max|ref| at every prompt position and all 32 greedy tokens equal; Q8_0 files (every
/// matrix, the embeddings included, as llama.cpp's Q8_0 files) with prompt logits within 3e-2
/// and the greedy tokens equal with the float32 kernels (x exact); the int8 kernels also round x
/// to 8 bits, which adds about as much error again (≈ 2 % of max|logit| in all, above half the
/// Qwen2 fixture's 1e-2 margins: its generation may part after a few steps; printed). Q4_0
/// within 0.3. Hyper-parameters come from the metadata and must equal config.json's.
@Suite struct GGUFDecoderTests {
    static func fixture(_ name: String) -> String { Fixtures.root + "/gguf-llm/" + name + ".gguf" }

    struct Case: Sendable, CustomTestStringConvertible {
        let file: String
        let model: String
        let tolerance: Float
        /// Greedy tokens must equal transformers' with the float32 kernels / with the preferred ones.
        let tokensExact: Bool
        let tokensExactPreferred: Bool
        var testDescription: String { file }
    }

    static let cases = [
        Case(file: "llama-f32", model: "llama", tolerance: 1e-4, tokensExact: true, tokensExactPreferred: true),
        Case(file: "llama-q8_0", model: "llama", tolerance: 3e-2, tokensExact: true, tokensExactPreferred: true),
        Case(file: "qwen2-bf16", model: "qwen2", tolerance: 1e-4, tokensExact: true, tokensExactPreferred: true),
        Case(file: "qwen2-q8_0", model: "qwen2", tolerance: 3e-2, tokensExact: true, tokensExactPreferred: false),
        Case(file: "qwen2-q4_0", model: "qwen2", tolerance: 0.3, tokensExact: false, tokensExactPreferred: false),
    ]

    @Test(arguments: cases)
    func matchesTransformers(_ c: Case) throws {
        let dir = Fixtures.root + "/hf/" + c.model
        let gguf = try GGUFFile(path: Self.fixture(c.file))
        let decoder = try TransformerDecoder(gguf: gguf)
        var expectedConfig = try huggingFaceConfig(dir)
        expectedConfig.maxPositionEmbeddings = decoder.config.maxPositionEmbeddings
        #expect(decoder.config == expectedConfig)
        #expect(try GGUFLanguageModel.reconcile(huggingFaceConfig(dir), with: gguf) == huggingFaceConfig(dir))

        let ids = try NPYArray(path: dir + "/input_ids.npy").ints
        let reference = try NPYArray(path: dir + "/logits_prompt.npy").floats
        let expected = try NPYArray(path: dir + "/generated_ids.npy").ints
        let vocab = decoder.config.vocabSize
        for kernel in [nil, QuantKernel.f32AVX2] {
            let d = kernel == nil ? decoder : try TransformerDecoder(gguf: gguf, quantizedKernel: kernel)
            let cache = try KVCache(config: d.config, capacity: 64)
            let context = testContext()
            let logits = try d.eval(tokens: ids, cache: cache, logits: .all, context: context)
            var worst: Float = 0
            for p in 0..<ids.count {
                worst = max(worst, relativeMaxError(row(logits, p, width: vocab), row(reference, p, width: vocab)))
            }
            let result = try d.generate(after: row(logits, ids.count - 1, width: vocab), cache: cache,
                                        parameters: GenerationParameters(maxNewTokens: expected.count, stopTokenIds: []),
                                        context: context)
            let agree = zip(result.tokens, expected).prefix { $0 == $1 }.count
            print("\(c.file) [\(kernel.map { "\($0)" } ?? "preferred kernels")]: prompt logits error \(worst), greedy tokens equal for \(agree) of \(expected.count)")
            #expect(worst <= c.tolerance)
            if kernel == nil ? c.tokensExactPreferred : c.tokensExact { #expect(result.tokens == expected) }
        }
    }

    @Test func refusesDisagreements() throws {
        let dir = Fixtures.root + "/hf/llama"
        let gguf = try GGUFFile(path: Self.fixture("llama-f32"))
        var config = try huggingFaceConfig(dir)
        config.intermediateSize += 32
        do { _ = try GGUFLanguageModel.reconcile(config, with: gguf); Issue.record("accepted a wrong MLP width") } catch {
            #expect(error.status == .badConfig)
        }
        config = try huggingFaceConfig(dir)
        config.ropeTheta = 1e6
        do { _ = try GGUFLanguageModel.reconcile(config, with: gguf); Issue.record("accepted a wrong θ") } catch {
            #expect(error.status == .badConfig)
        }
        // A Qwen2 file read as LLaMA lacks nothing but has biases LLaMA does not: refused.
        var qwen = try LanguageModelConfig(gguf: GGUFFile(path: Self.fixture("qwen2-bf16")))
        qwen.architecture = .llama
        do { _ = try TransformerDecoder(config: qwen, gguf: GGUFFile(path: Self.fixture("qwen2-bf16"))); Issue.record("accepted biases") } catch {
            #expect(error.status == .unsupported)
        }
        // One layer fewer than the file has.
        var shallow = try LanguageModelConfig(gguf: gguf)
        shallow.layerCount = 1
        do { _ = try TransformerDecoder(config: shallow, gguf: gguf); Issue.record("accepted an extra layer") } catch {
            #expect(error.status == .tensorMismatch)
        }
    }
}
