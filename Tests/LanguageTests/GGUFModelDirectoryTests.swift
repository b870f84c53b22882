import Foundation
import LlavaUHD
import Testing
import TestSupport

/// A model directory whose LLM is a GGUF file (`GGUFLanguageModel`): the Qwen2 upstream tiny
/// model's LLM tensors written to `llm.gguf` under llama.cpp's names (BF16 as stored, F32 norms
/// and biases, Qwen2 metadata), next to links to the original config.json, safetensors and
/// tokenizer files. `LlavaModel` must take the LLM from the GGUF file and give logits identical
/// to the safetensors model's (same values, same kernels); a second GGUF file without
/// `llm_gguf` in config.json is refused, and `llm_gguf` picks one.
@Suite struct GGUFModelDirectoryTests {
    static let source = Fixtures.model("chelsea-qwen2-mask5")

    /// Writes the LLM of `store` as a GGUF v3 file.
    static func writeGGUF(_ store: WeightStore, config c: LanguageModelConfig, to path: String) throws {
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func str(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }
        var kv: [[UInt8]] = [str("general.architecture") + u32(8) + str("qwen2")]
        for (k, v) in [("block_count", c.layerCount), ("context_length", c.maxPositionEmbeddings), ("embedding_length", c.hiddenSize),
                       ("feed_forward_length", c.intermediateSize), ("attention.head_count", c.headCount),
                       ("attention.head_count_kv", c.kvHeadCount)] {
            kv.append(str("qwen2." + k) + u32(4) + u32(UInt32(v)))
        }
        kv.append(str("qwen2.attention.layer_norm_rms_epsilon") + u32(6) + u32(c.rmsNormEps.bitPattern))
        kv.append(str("qwen2.rope.freq_base") + u32(6) + u32(c.ropeTheta.bitPattern))
        var names: [(String, String)] = [("model.embed_tokens.weight", "token_embd.weight"), ("lm_head.weight", "output.weight"),
                                         ("model.norm.weight", "output_norm.weight")]
        let perLayer = [("input_layernorm.weight", "attn_norm.weight"), ("post_attention_layernorm.weight", "ffn_norm.weight"),
                        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.k_proj.weight", "attn_k.weight"),
                        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.o_proj.weight", "attn_output.weight"),
                        ("self_attn.q_proj.bias", "attn_q.bias"), ("self_attn.k_proj.bias", "attn_k.bias"),
                        ("self_attn.v_proj.bias", "attn_v.bias"), ("mlp.gate_proj.weight", "ffn_gate.weight"),
                        ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.down_proj.weight", "ffn_down.weight")]
        for l in 0..<c.layerCount { for (hf, g) in perLayer { names.append(("model.layers.\(l)." + hf, "blk.\(l)." + g)) } }
        var infos: [UInt8] = [], data: [UInt8] = []
        for (hf, g) in names {
            let t = try store.tensor(hf)
            let matrix = t.shape.count == 2
            let bytes: [UInt8] = matrix ? Array(t.bytes) : t.floats().withUnsafeBytes(Array.init)
            while data.count % 32 != 0 { data.append(0) }
            infos += str(g) + u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { infos += u64(UInt64(d)) }
            infos += u32(matrix ? 30 : 0) + u64(UInt64(data.count))
            data += bytes
        }
        var file = Array("GGUF".utf8) + u32(3) + u64(UInt64(names.count)) + u64(UInt64(kv.count))
        for e in kv { file += e }
        file += infos
        while file.count % 32 != 0 { file.append(0) }
        try Data(file + data).write(to: URL(fileURLWithPath: path))
    }

    @Test(.enabled(if: fileExists(GGUFModelDirectoryTests.source + "/model.safetensors")))
    func llmFromGGUF() throws {
        let fm = FileManager.default
        let dir = NSTemporaryDirectory() + "luhd-gguf-dir-\(UInt64.random(in: 0..<UInt64.max))"
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: dir) }
        for name in try fm.contentsOfDirectory(atPath: Self.source) where !name.hasPrefix(".") {
            try fm.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: Self.source + "/" + name)
        }
        let original = try LlavaModel(path: Self.source, options: .init(threads: 2))
        try Self.writeGGUF(original.weights, config: original.languageConfig, to: dir + "/llm.gguf")

        let model = try LlavaModel(path: dir, options: .init(threads: 2))
        #expect(model.languageGGUF?.path == dir + "/llm.gguf")
        #expect(original.languageGGUF == nil)
        let prompt = try model.tokenizer.encode("A tiny model answers", addBOS: false, parseSpecial: true).map(Int.init)
        let a = try original.language.eval(tokens: prompt, cache: KVCache(config: original.languageConfig, capacity: 32),
                                           logits: .all, context: original.computeContext())
        let b = try model.language.eval(tokens: prompt, cache: KVCache(config: model.languageConfig, capacity: 32),
                                        logits: .all, context: model.computeContext())
        #expect(a == b)

        // Two GGUF files: ambiguous unless config.json names one.
        try fm.copyItem(atPath: dir + "/llm.gguf", toPath: dir + "/other.gguf")
        do { _ = try LlavaModel(path: dir); Issue.record("accepted two GGUF files") } catch {
            #expect(error.status == .badConfig)
        }
        var config = try String(contentsOfFile: Self.source + "/config.json", encoding: .utf8)
        config = config.replacingOccurrences(of: "\"use_sliding_window\": false,", with: "\"use_sliding_window\": false,\n  \"llm_gguf\": \"other.gguf\",")
        try fm.removeItem(atPath: dir + "/config.json")
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let named = try LlavaModel(path: dir, options: .init(threads: 2))
        #expect(named.languageGGUF?.path == dir + "/other.gguf")
    }
}
