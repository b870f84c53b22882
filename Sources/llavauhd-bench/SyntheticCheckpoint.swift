#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// Synthetic model directories with the real tensor names and shapes of the released
/// checkpoints (docs/MODEL.md §2–§4, §6–§7), in BF16, sharded like Hugging Face's `save_pretrained`
/// (≤ 5 GB shards `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json`), with
/// a config.json carrying the upstream keys. The values are cheap, deterministic and non-zero
/// (small pseudo-random weights, unit norm scales) so that every page is real data and a
/// forward pass stays finite; they mean nothing. Tokenizer files are not written.
///
/// Benchmarks reuse a directory once written: `SyntheticCheckpoint.ensure` writes it only when
/// its completion marker is missing or names a different layout.
struct SyntheticCheckpoint {
    /// The language model of the checkpoint.
    enum LanguageModel: String {
        /// Vicuna-7B v1.5 (LLaMA-2 7B): 32 layers, hidden 4096, MLP 11008, 32 heads, vocab 32000.
        case vicuna7B = "vicuna-7b"
        /// Qwen2-7B: 28 layers, hidden 3584, MLP 18944, 28 heads / 4 KV heads, q/k/v biases,
        /// vocab 152064, untied LM head.
        case qwen2_7B = "qwen2-7b"

        /// The name used in tables.
        var displayName: String { self == .vicuna7B ? "Vicuna-7B" : "Qwen2-7B" }
        /// The architecture name of scripts/bench/bench_torch.py and GGUF.
        var architectureName: String { self == .vicuna7B ? "llama" : "qwen2" }

        var hidden: Int { self == .vicuna7B ? 4096 : 3584 }
        var intermediate: Int { self == .vicuna7B ? 11008 : 18944 }
        var layers: Int { self == .vicuna7B ? 32 : 28 }
        var heads: Int { self == .vicuna7B ? 32 : 28 }
        var kvHeads: Int { self == .vicuna7B ? 32 : 4 }
        var vocab: Int { self == .vicuna7B ? 32000 : 152064 }
    }

    /// How a tensor is filled.
    enum Fill {
        /// Pseudo-random values in about ±0.02 (weights, embeddings, queries).
        case random
        /// Every value equal (norm scales: 1; JBU `sigma_spatial`: 1, `range_temp`: 0).
        case constant(Float)
    }

    struct Tensor {
        let name: String
        let shape: [Int]
        let fill: Fill
        var count: Int { shape.reduce(1, *) }
        var bytes: Int { count * 2 }
    }

    /// What the directory holds.
    let languageModel: LanguageModel
    /// With the CLIP ViT-L/14-336 tower and the VDIM + Hiwin projector (a complete LLaVA-UHD v2
    /// directory) or the language model alone.
    let multimodal: Bool
    /// Decoder layers written (nil: the model's full depth). Benchmarks that cannot afford the
    /// full 13–15 GB build a few layers and extrapolate.
    var layers: Int? = nil

    /// The decoder layers written.
    var layerCount: Int { min(languageModel.layers, max(1, layers ?? languageModel.layers)) }

    var layoutName: String {
        let depth = layerCount == languageModel.layers ? "" : "-\(layerCount)-layers"
        return "llava-uhd-v2-\(languageModel.rawValue)\(multimodal ? "" : "-llm-only")\(depth)-bf16-random"
    }

    /// The LLM's hyper-parameters (docs/MODEL.md §6) with the layers written.
    var languageConfig: LanguageModelConfig {
        let m = languageModel
        return m == .vicuna7B
            ? LanguageModelConfig(architecture: .llama, hiddenSize: 4096, intermediateSize: 11008, layerCount: layerCount,
                                  headCount: 32, kvHeadCount: 32, vocabSize: 32000, rmsNormEps: 1e-5, ropeTheta: 10000,
                                  maxPositionEmbeddings: 4096, tieWordEmbeddings: false, bosTokenId: 1, eosTokenIds: [2])
            : LanguageModelConfig(architecture: .qwen2, hiddenSize: 3584, intermediateSize: 18944, layerCount: layerCount,
                                  headCount: 28, kvHeadCount: 4, vocabSize: 152064, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
                                  maxPositionEmbeddings: 32768, tieWordEmbeddings: false, bosTokenId: nil,
                                  eosTokenIds: [151645, 151643])
    }

    // MARK: Tensors

    var tensors: [Tensor] {
        var t = languageModelTensors
        if multimodal { t += Self.visionTowerTensors + projectorTensors }
        return t
    }

    /// `model.embed_tokens`, `model.layers.*`, `model.norm`, `lm_head` (HF LLaMA / Qwen2 names).
    var languageModelTensors: [Tensor] {
        let m = languageModel, h = m.hidden, kv = m.kvHeads * (h / m.heads)
        var t = [Tensor(name: "model.embed_tokens.weight", shape: [m.vocab, h], fill: .random)]
        for i in 0..<layerCount {
            let p = "model.layers.\(i)."
            t.append(Tensor(name: p + "input_layernorm.weight", shape: [h], fill: .constant(1)))
            for (proj, rows) in [("q_proj", h), ("k_proj", kv), ("v_proj", kv)] {
                t.append(Tensor(name: p + "self_attn.\(proj).weight", shape: [rows, h], fill: .random))
                if m == .qwen2_7B { t.append(Tensor(name: p + "self_attn.\(proj).bias", shape: [rows], fill: .random)) }
            }
            t.append(Tensor(name: p + "self_attn.o_proj.weight", shape: [h, h], fill: .random))
            t.append(Tensor(name: p + "post_attention_layernorm.weight", shape: [h], fill: .constant(1)))
            t.append(Tensor(name: p + "mlp.gate_proj.weight", shape: [m.intermediate, h], fill: .random))
            t.append(Tensor(name: p + "mlp.up_proj.weight", shape: [m.intermediate, h], fill: .random))
            t.append(Tensor(name: p + "mlp.down_proj.weight", shape: [h, m.intermediate], fill: .random))
        }
        t.append(Tensor(name: "model.norm.weight", shape: [h], fill: .constant(1)))
        t.append(Tensor(name: "lm_head.weight", shape: [m.vocab, h], fill: .random))
        return t
    }

    /// The fine-tuned CLIP ViT-L/14-336 tower under `model.vision_tower.vision_tower.vision_model.`
    /// (hidden 1024, 24 layers, MLP 4096, 577 positions).
    static var visionTowerTensors: [Tensor] {
        let p = "model.vision_tower.vision_tower.vision_model."
        var t = [
            Tensor(name: p + "embeddings.class_embedding", shape: [1024], fill: .random),
            Tensor(name: p + "embeddings.patch_embedding.weight", shape: [1024, 3, 14, 14], fill: .random),
            Tensor(name: p + "embeddings.position_embedding.weight", shape: [577, 1024], fill: .random),
            Tensor(name: p + "pre_layrnorm.weight", shape: [1024], fill: .constant(1)),
            Tensor(name: p + "pre_layrnorm.bias", shape: [1024], fill: .random),
        ]
        for i in 0..<24 {
            let l = p + "encoder.layers.\(i)."
            for proj in ["k_proj", "v_proj", "q_proj", "out_proj"] {
                t.append(Tensor(name: l + "self_attn.\(proj).weight", shape: [1024, 1024], fill: .random))
                t.append(Tensor(name: l + "self_attn.\(proj).bias", shape: [1024], fill: .random))
            }
            for norm in ["layer_norm1", "layer_norm2"] {
                t.append(Tensor(name: l + norm + ".weight", shape: [1024], fill: .constant(1)))
                t.append(Tensor(name: l + norm + ".bias", shape: [1024], fill: .random))
            }
            t.append(Tensor(name: l + "mlp.fc1.weight", shape: [4096, 1024], fill: .random))
            t.append(Tensor(name: l + "mlp.fc1.bias", shape: [4096], fill: .random))
            t.append(Tensor(name: l + "mlp.fc2.weight", shape: [1024, 4096], fill: .random))
            t.append(Tensor(name: l + "mlp.fc2.bias", shape: [1024], fill: .random))
        }
        t.append(Tensor(name: p + "post_layernorm.weight", shape: [1024], fill: .constant(1)))
        t.append(Tensor(name: p + "post_layernorm.bias", shape: [1024], fill: .random))
        return t
    }

    /// The Hiwin resampler and the VDIM (JBU 4× stack) under `model.mm_projector.`, with
    /// E = the LLM's hidden size (docs/MODEL.md §3.4, §4; the nesting `upsampler.upsampler.` and the
    /// unused ChannelNorm `upsampler.model.1.norm` are as the release stores them).
    var projectorTensors: [Tensor] {
        let e = languageModel.hidden, p = "model.mm_projector."
        var t = [Tensor(name: p + "pos_embed", shape: [144, e], fill: .random),
                 Tensor(name: p + "query", shape: [144, e], fill: .random)]
        for q in 1...4 { t.append(Tensor(name: p + "query_\(q)", shape: [144, e], fill: .random)) }
        t.append(Tensor(name: p + "kv_proj.weight", shape: [e, 1024], fill: .random))
        for s in [1, 2, 4, 8] {
            t.append(Tensor(name: p + "feature_\(s)x_embedding", shape: [1, 1, e], fill: .random))
            t.append(Tensor(name: p + "features_\(s)x_projector.weight", shape: [e, 1024], fill: .random))
            t.append(Tensor(name: p + "features_\(s)x_projector.bias", shape: [e], fill: .random))
        }
        t += [Tensor(name: p + "attn.in_proj_weight", shape: [3 * e, e], fill: .random),
              Tensor(name: p + "attn.in_proj_bias", shape: [3 * e], fill: .random),
              Tensor(name: p + "attn.out_proj.weight", shape: [e, e], fill: .random),
              Tensor(name: p + "attn.out_proj.bias", shape: [e], fill: .random)]
        for ln in ["ln_q", "ln_kv", "ln_proj", "ln_post"] {
            t.append(Tensor(name: p + ln + ".weight", shape: [e], fill: .constant(1)))
            t.append(Tensor(name: p + ln + ".bias", shape: [e], fill: .random))
        }
        t += [Tensor(name: p + "cat_proj.weight", shape: [e, 4 * e], fill: .random),
              Tensor(name: p + "cat_proj.bias", shape: [e], fill: .random),
              Tensor(name: p + "proj", shape: [e, e], fill: .random)]
        let u = p + "upsampler.upsampler."
        for stage in ["up1", "up2"] {
            let s = u + stage + "."
            t += [Tensor(name: s + "range_temp", shape: [], fill: .constant(0)),
                  Tensor(name: s + "sigma_spatial", shape: [], fill: .constant(1)),
                  Tensor(name: s + "range_proj.0.weight", shape: [32, 3, 1, 1], fill: .random),
                  Tensor(name: s + "range_proj.0.bias", shape: [32], fill: .random),
                  Tensor(name: s + "range_proj.3.weight", shape: [32, 32, 1, 1], fill: .random),
                  Tensor(name: s + "range_proj.3.bias", shape: [32], fill: .random),
                  Tensor(name: s + "fixup_proj.0.weight", shape: [49, 52, 1, 1], fill: .random),
                  Tensor(name: s + "fixup_proj.0.bias", shape: [49], fill: .random),
                  Tensor(name: s + "fixup_proj.3.weight", shape: [49, 49, 1, 1], fill: .random),
                  Tensor(name: s + "fixup_proj.3.bias", shape: [49], fill: .random)]
        }
        t += [Tensor(name: u + "fixup_proj.1.weight", shape: [1024, 1024, 1, 1], fill: .random),
              Tensor(name: u + "fixup_proj.1.bias", shape: [1024], fill: .random),
              Tensor(name: p + "upsampler.model.1.norm.weight", shape: [1024], fill: .constant(1)),
              Tensor(name: p + "upsampler.model.1.norm.bias", shape: [1024], fill: .random)]
        return t
    }

    // MARK: config.json

    /// config.json with the keys upstream writes (values for the real sizes).
    var configJSON: String {
        let m = languageModel
        var keys: [(String, String)] = [
            ("architectures", m == .vicuna7B ? "[\"LlavaLlamaForCausalLM\"]" : "[\"LlavaQwenForCausalLM\"]"),
            ("model_type", m == .vicuna7B ? "\"llava_llama\"" : "\"llava_qwen\""),
            ("hidden_size", "\(m.hidden)"), ("intermediate_size", "\(m.intermediate)"),
            ("num_hidden_layers", "\(layerCount)"), ("num_attention_heads", "\(m.heads)"),
            ("num_key_value_heads", "\(m.kvHeads)"), ("vocab_size", "\(m.vocab)"),
            ("hidden_act", "\"silu\""), ("rms_norm_eps", m == .vicuna7B ? "1e-05" : "1e-06"),
            ("rope_theta", m == .vicuna7B ? "10000.0" : "1000000.0"), ("rope_scaling", "null"),
            ("max_position_embeddings", m == .vicuna7B ? "4096" : "32768"),
            ("tie_word_embeddings", "false"), ("torch_dtype", "\"bfloat16\""),
            ("bos_token_id", m == .vicuna7B ? "1" : "151643"), ("eos_token_id", m == .vicuna7B ? "2" : "151645"),
        ]
        if m == .vicuna7B { keys += [("pad_token_id", "0"), ("attention_bias", "false")] }
        if multimodal {
            keys += [
                ("mm_vision_tower", "\"openai/clip-vit-large-patch14-336\""), ("mm_hidden_size", "1024"),
                ("mm_projector_type", m == .vicuna7B ? "\"adapt_spatial_resampler\"" : "\"adapt_spatial_resampler_v2\""),
                ("mm_vision_select_layer", "-2"), ("mm_vision_select_feature", "\"patch\""),
                ("mm_patch_merge_type", "\"flat\""), ("feature_mode", "\"featup_muti_res\""),
                ("feature_scale_mask", m == .vicuna7B ? "7" : "5"), ("vdim_ckpt", "\"clip-large-jbu.ckpt\""),
                ("mm_use_im_start_end", "false"), ("mm_use_im_patch_token", "false"),
                ("image_aspect_ratio", "\"pad\""), ("tokenizer_model_max_length", "4096"),
                ("tokenizer_padding_side", "\"right\""), ("use_mm_proj", "true"),
            ]
            if m == .qwen2_7B { keys.append(("model_mode", "\"uhd_v2\"")) }
        }
        return "{\n" + keys.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }

    // MARK: Writing

    /// Largest shard payload (Hugging Face's default `max_shard_size="5GB"`).
    static let shardBytes = 5_000_000_000

    /// The tensors of each shard, in order.
    var shards: [[Tensor]] {
        var result: [[Tensor]] = [[]]
        var size = 0
        for t in tensors {
            if size + t.bytes > Self.shardBytes, !(result.last?.isEmpty ?? true) {
                result.append([])
                size = 0
            }
            result[result.count - 1].append(t)
            size += t.bytes
        }
        return result
    }

    var totalBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }

    /// True when `parent` holds this layout complete (its marker names the layout).
    func isComplete(in parent: String) -> Bool {
        let marker = parent + "/" + layoutName + "/.complete"
        guard fileExists(marker), let text = try? readWholeFile(marker) else { return false }
        return String(decoding: text, as: UTF8.self) == layoutName
    }

    /// The directory `parent/layoutName`, written unless already complete. Returns its path and
    /// whether it was written now (and how long that took).
    func ensure(in parent: String) throws -> (path: String, written: Bool, seconds: Double) {
        let dir = parent + "/" + layoutName
        let marker = dir + "/.complete"
        if isComplete(in: parent) { return (dir, false, 0) }
        try Self.makeDirectory(parent)
        try Self.makeDirectory(dir)
        let t0 = monotonicSeconds()
        try write(to: dir)
        try Self.writeText(layoutName, to: marker)
        return (dir, true, monotonicSeconds() - t0)
    }

    /// Writes config.json, the shards and the index into `dir`, each shard's pages dropped from
    /// the page cache once on disk (so a following load starts cold-ish).
    func write(to dir: String) throws {
        try Self.writeText(configJSON, to: dir + "/config.json")
        let shards = self.shards
        var weightMap: [(String, String)] = []
        var serial = 0
        for (i, shard) in shards.enumerated() {
            let file = "model-\(Self.fiveDigits(i + 1))-of-\(Self.fiveDigits(shards.count)).safetensors"
            var header = SafetensorsWriter(metadata: [("format", "pt")])
            for t in shard {
                header.add(t.name, dtype: .bf16, shape: t.shape, byteCount: t.bytes)
                weightMap.append((t.name, file))
            }

            let path = dir + "/" + file
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SyntheticCheckpointError("cannot create \(path)") }
            defer { close(fd) }
            try header.header().withUnsafeBytes { try Self.writeAll(fd, $0, path) }
            for t in shard {
                switch t.fill {
                case .random:
                    // Fresh values for every tensor: memory pages with repeated contents read
                    // faster than real weights on some virtual machines (deduplicated by the host).
                    var rng = SplitMix(seed: 0x5EED &+ UInt64(serial))
                    var remaining = t.count
                    var chunk = [UInt16](repeating: 0, count: 1 << 20)
                    while remaining > 0 {
                        let n = min(remaining, chunk.count)
                        chunk.withUnsafeMutableBufferPointer { c in Self.fillRandom(c.baseAddress!, count: n, rng: &rng) }
                        try chunk.withUnsafeBytes { try Self.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<(n * 2)]), path) }
                        remaining -= n
                    }
                case .constant(let v):
                    let bits = UInt16(truncatingIfNeeded: v.bitPattern >> 16)
                    let values = [UInt16](repeating: bits.littleEndian, count: t.count)
                    try values.withUnsafeBytes { try Self.writeAll(fd, $0, path) }
                }
                serial += 1
            }
            fdatasync(fd)
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        }
        let total = totalBytes
        let index = "{\n  \"metadata\": {\"total_size\": \(total)},\n  \"weight_map\": {\n"
            + weightMap.map { "    \"\($0.0)\": \"\($0.1)\"" }.joined(separator: ",\n") + "\n  }\n}\n"
        try Self.writeText(index, to: dir + "/model.safetensors.index.json")
    }

    /// `count` pseudo-random BF16 values, uniform in ±[0.001, 0.021) (none zero), 4 per draw.
    static func fillRandom(_ out: UnsafeMutablePointer<UInt16>, count: Int, rng: inout SplitMix) {
        var i = 0
        while i < count {
            var r = rng.next()
            for _ in 0..<4 where i < count {
                let u = Float(r & 0xFFFF) / 65536                   // [0, 1)
                let v = (u - 0.5) * 0.04 + (u < 0.5 ? -1e-3 : 1e-3)
                out[i] = UInt16(truncatingIfNeeded: v.bitPattern >> 16)
                r >>= 16
                i += 1
            }
        }
    }

    static func fiveDigits(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }
}

/// A failure to write or read a synthetic checkpoint.
struct SyntheticCheckpointError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension SyntheticCheckpoint {
    /// Where benchmarks keep generated inputs: `--dir DIR` on the command line,
    /// else `$LLAVAUHD_BENCH_DIR`, else /tmp/llavauhd-bench.
    /// The test assets' directory: `$LLAVAUHD_TEST_ASSETS`, else ./.build-assets.
    static var testAssets: String { environment("LLAVAUHD_TEST_ASSETS") ?? "\(environment("PWD") ?? ".")/.build-assets" }

    /// Copies the test assets' tokenizer of `model` into `dir` (a synthetic directory has none)
    /// unless it is there: Vicuna's `tokenizer.model`, or Qwen2's `vocab.json`, `merges.txt` and
    /// `tokenizer.json`; false when the assets lack it.
    static func installTestTokenizer(in dir: String, for model: LanguageModel = .vicuna7B) -> Bool {
        let files: [(source: String, name: String)] = model == .vicuna7B
            ? [("tokenizers/tokenizer.model.v1", "tokenizer.model")]
            : ["vocab.json", "merges.txt", "tokenizer.json"].map { ("tokenizers/qwen2/" + $0, $0) }
        for (source, name) in files where !fileExists(dir + "/" + name) {
            guard fileExists(testAssets + "/" + source),
                  system("cp \(shellQuoted(testAssets + "/" + source)) \(shellQuoted(dir + "/" + name))") == 0 else { return false }
        }
        return true
    }

    static func benchDirectory() -> String {
        let args = CommandLine.arguments
        if let i = args.firstIndex(of: "--dir"), i + 1 < args.count { return args[i + 1] }
        if let env = getenv("LLAVAUHD_BENCH_DIR"), env[0] != 0 { return String(cString: env) }
        return "/tmp/llavauhd-bench"
    }

    /// The shard files of this layout inside `dir`.
    func shardPaths(in dir: String) -> [String] {
        let n = shards.count
        return (1...n).map { dir + "/model-\(Self.fiveDigits($0))-of-\(Self.fiveDigits(n)).safetensors" }
    }

    /// Asks the kernel to drop the cached pages of these files (clean pages only; no root
    /// needed), so the next access reads from disk.
    static func dropFromPageCache(_ paths: [String]) {
        for path in paths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            close(fd)
        }
    }

    fileprivate static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw SyntheticCheckpointError("cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    fileprivate static func writeText(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SyntheticCheckpointError("cannot create \(path)") }
        defer { close(fd) }
        try Array(text.utf8).withUnsafeBytes { try writeAll(fd, $0, path) }
    }

    fileprivate static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            throw SyntheticCheckpointError("cannot create directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}
