#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LlavaUHD
import Testing
import TestSupport

/// Real, trained LLMs loaded as text-only models from their GGUF files, against llama.cpp's own
/// goldens (Tests/Fixtures/real-models/<file>.json, written by
/// scripts/fixtures/make_real_model_goldens.py from llama.cpp's llama-tokenize, llama-simple and
/// llama-perplexity):
///
/// * every prompt tokenizes to llama.cpp's ids;
/// * the greedy continuation gives llama.cpp's text token by token up to the first near tie:
///   where the texts part, the top-2 logit gap of our step (or of the step before, when our
///   token's text was a prefix of llama.cpp's) must be below `nearTie` (both
///   programs quantize activations differently, so a near tie may go either way); the place and
///   gap of every parting are printed. Both sides keep K and V in F16: our sessions' default
///   (`KVCacheType.sessionDefault`) and llama-simple's (with flash attention `auto`, on for the
///   CPU backend);
/// * the repository's LICENSE tokenizes to llama-tokenize's ids, and its perplexity
///   (llama-perplexity's method: chunks of `context` tokens, the first one BOS when the
///   vocabulary adds one, the second half of each chunk scored) is within
///   `relativePerplexityTolerance` of llama-perplexity's, with the KV cache type llama.cpp used
///   (F16, its default, with flash attention on), both with the default kernels (int8
///   activations where the CPU has AVX-512 VNNI) and with the exact f32 kernels.
///
/// SmolLM2-135M (scripts/fetch-real-models.sh smollm2, fetched by setup-test-assets.sh) runs in
/// CI; the two Qwen2.5-Coder files run with `make real-models-test` (LLAVAUHD_REAL_MODELS=1).
@Suite(.serialized) struct RealModelTests {
    /// Largest top-2 logit gap at which a parting from llama.cpp's greedy text is accepted.
    static let nearTie: Float = 0.25
    /// Largest relative perplexity difference from llama.cpp's. Both programs quantize the
    /// activations of quantized matrices to int8 (llama.cpp always: per block of 32, per
    /// super-block of 256 for the K formats; we by default on VNNI CPUs: per 32, per 256 for
    /// the K formats' prefill products, `PreparedInt8Rows.Blocking`), with different rounding
    /// details; any change upstream of a block re-rolls its rounding, and over the ~1000 scored
    /// tokens that moves perplexity by a few tenths of a percent either way (SmolLM2 on LICENSE:
    /// F16 instead of F32 KV moves our int8 figure by 0.5%, our exact-f32 one by 0.02%;
    /// llama.cpp's flash attention on instead of off moves its own by 0.2%). Measured: int8 0.25%, exact f32 0.09% from llama.cpp's 15.9289.
    static let relativePerplexityTolerance = 0.005

    static let smollm = Fixtures.smolLM2
    static let qwen = ["qwen2.5-coder-0.5b-instruct.gguf", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"]

    static func path(_ file: String) -> String { Fixtures.realModel(file) }
    static var realModelsRequested: Bool { getenv("LLAVAUHD_REAL_MODELS").map { String(cString: $0) == "1" } ?? false }

    struct Golden: Decodable {
        struct Prompt: Decodable {
            let name: String
            let prompt: String
            /// llama-tokenize's ids; nil when the goldens were made without it.
            let prompt_ids: [Int]?
            let max_new_tokens: Int
            let continuation: String
            /// The continuation's bytes (it may end inside a character).
            let continuation_hex: String
        }
        struct Perplexity: Decodable {
            /// Repository-relative path of the text.
            let text: String
            let text_sha256: String
            /// llama-tokenize's ids of the text: their count, and the sha256 of their decimal
            /// spellings joined by ",".
            let text_tokens: Int
            let text_ids_sha256: String
            let context: Int
            let chunks: Int
            /// llama.cpp's K and V cache type ("f16") and flash attention setting ("auto").
            let kv_type: String
            let flash_attn: String
            let ppl: Double
        }
        let prompts: [Prompt]
        /// nil when the goldens were made without llama-perplexity.
        let perplexity: Perplexity?
    }

    static func golden(_ file: String) throws -> Golden {
        let url = URL(fileURLWithPath: Fixtures.root + "/real-models/" + file + ".json")
        return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }

    @Test(.enabled(if: fileExists(path(smollm)) || Fixtures.onCI, "\(path(smollm)) missing: run scripts/setup-test-assets.sh"))
    func smolLM2AgainstLlamaCpp() throws {
        try Self.check(Self.smollm)
    }

    @Test(.enabled(if: realModelsRequested, "outside CI: make real-models-test"), arguments: qwen)
    func qwenAgainstLlamaCpp(file: String) throws {
        try Self.check(file)
    }

    static func check(_ file: String) throws {
        guard fileExists(path(file)) else { throw LlavaError(.io, "\(path(file)) missing: run scripts/fetch-real-models.sh") }
        let golden = try golden(file)
        let model = try LlavaModel(path: path(file))
        #expect(model.vision == nil && model.chatTemplate == .chatML)
        let tok = model.tokenizer
        var exact = 0
        for p in golden.prompts {
            let ids = try tok.encode(p.prompt, addBOS: tok.addsBOSByDefault, parseSpecial: true).map(Int.init)
            if let expected = p.prompt_ids { #expect(ids == expected, "\(file) \(p.name): prompt ids differ from llama-tokenize's") }
            let session = try ChatSession(model: model)
            try session.eval(tokens: ids)
            let hex = Array(p.continuation_hex.utf8)
            let want = stride(from: 0, to: hex.count - 1, by: 2).compactMap { UInt8(String(decoding: hex[$0...($0 + 1)], as: UTF8.self), radix: 16) }
            var generated: [Int32] = []
            var parted: (step: Int, gap: Float)?
            var previousGap = Float.infinity
            for step in 0..<p.max_new_tokens {
                let logits = try #require(session.logits)
                var best = 0, second = -1
                for i in 1..<logits.count where logits[i] > logits[best] { best = i }
                for i in 0..<logits.count where i != best && (second < 0 || logits[i] > logits[second]) { second = i }
                if model.languageConfig.eosTokenIds.contains(best) { break }
                generated.append(Int32(best))
                let have = try tok.decodeBytes(generated, skipSpecialTokens: false)
                let gap = logits[best] - logits[second]
                if !(have.count <= want.count && Array(want[..<have.count]) == have) {
                    // A token whose text is a prefix of llama.cpp's (" color" for " colors")
                    // shows the parting one step late: the tie is at this step or the one before.
                    parted = (step, min(gap, previousGap))
                    break
                }
                previousGap = gap
                try session.eval(tokens: [best])
            }
            let text = try tok.decode(generated, skipSpecialTokens: false)
            let bytes = try tok.decodeBytes(generated, skipSpecialTokens: false)
            if let parted {
                print("\(file) \(p.name): parts from llama.cpp at generated token \(parted.step), top-2 logit gap \(parted.gap)")
                #expect(parted.gap < nearTie, "\(file) \(p.name): parts at token \(parted.step) with gap \(parted.gap): \"\(text)\" vs \"\(p.continuation)\"")
            } else {
                #expect(bytes == want, "\(file) \(p.name): \"\(text)\" vs llama.cpp's \"\(p.continuation)\"")
                if bytes == want { exact += 1 }
            }
        }
        print("\(file): \(exact) of \(golden.prompts.count) greedy continuations identical to llama.cpp's")

        // Perplexity as llama-perplexity computes it.
        guard let ppl = golden.perplexity else {
            print("\(file): the goldens hold no llama-perplexity figure")
            return
        }
        let textBytes = try readWholeFile(Fixtures.repoRoot + "/" + ppl.text)
        try #require(SHA256.hex(textBytes) == ppl.text_sha256, "\(ppl.text) is not the text of the goldens")
        let tokens = try tok.encode(utf8: textBytes, addBOS: tok.addsBOSByDefault, parseSpecial: false).map(Int.init)
        let idsHash = SHA256.hex(Array(tokens.map(String.init).joined(separator: ",").utf8))
        #expect(tokens.count == ppl.text_tokens && idsHash == ppl.text_ids_sha256,
                "\(file): \(ppl.text) gives \(tokens.count) tokens, not llama-tokenize's \(ppl.text_tokens) (or other ids)")
        try #require(tokens.count >= ppl.chunks * ppl.context)
        let kvType = try #require(KVCacheType(name: ppl.kv_type))
        let gguf = try #require(model.languageGGUF)
        let exactDecoder = try TransformerDecoder(gguf: gguf, quantizedKernel: QuantKernel.f32AVX512.isAvailable ? .f32AVX512 : .f32AVX2)
        for (name, decoder) in [("default kernels", model.language), ("exact f32 kernels", exactDecoder)] {
            let (ours, count) = try perplexity(of: tokens, decoder: decoder, bos: tok.addsBOSByDefault ? tok.bosTokenId.map(Int.init) : nil,
                                               context: ppl.context, chunks: ppl.chunks, kvType: kvType,
                                               compute: model.computeContext())
            let relative = abs(ours - ppl.ppl) / ppl.ppl
            print("\(file): perplexity of \(ppl.text), \(name), KV \(kvType): \(ours) vs llama.cpp \(ppl.ppl) "
                  + "(KV \(ppl.kv_type), flash attention \(ppl.flash_attn)): relative difference \(relative), \(count) tokens scored")
            #expect(relative < relativePerplexityTolerance, "\(file) \(name): perplexity \(ours) vs llama.cpp's \(ppl.ppl)")
        }
    }

    /// llama-perplexity's figure: `tokens` cut into `chunks` chunks of `context` tokens, each
    /// evaluated alone from an empty cache with its first token replaced by `bos` when given,
    /// the second half of each chunk scored (the last position predicts nothing); returns
    /// exp(mean negative log-likelihood) and the count of scored tokens.
    static func perplexity(of tokens: [Int], decoder: TransformerDecoder, bos: Int?, context n: Int, chunks: Int,
                           kvType: KVCacheType, compute: ComputeContext) throws -> (Double, Int) {
        var nll = 0.0, count = 0
        let vocab = decoder.config.vocabSize
        for c in 0..<chunks {
            var chunk = Array(tokens[(c * n)..<((c + 1) * n)])
            if let bos { chunk[0] = bos }
            let cache = try KVCache(config: decoder.config, capacity: n, type: kvType)
            let logits = try decoder.eval(tokens: chunk, cache: cache, logits: .all, context: compute)
            for j in (n / 2)..<(n - 1) {
                let row = logits[(j * vocab)..<((j + 1) * vocab)]
                let m = row.max() ?? 0
                let logSum = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
                nll += logSum - Double(row[row.startIndex + chunk[j + 1]])
                count += 1
            }
        }
        return (exp(nll / Double(max(1, count))), count)
    }
}
