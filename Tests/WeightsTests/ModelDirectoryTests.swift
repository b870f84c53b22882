import LlavaUHD
import Testing
import TestSupport

/// The five tiny model directories (rebuilt by scripts/setup-test-assets.sh) load: every
/// tensor the upstream code names is there with its shape, in BF16, nothing else is; the CLIP
/// hyper-parameters inferred from the shapes match `model.clip_inferred_from_shapes` of each
/// manifest.
@Suite(.enabled(if: fileExists(Fixtures.model("coffee-v2-mask7") + "/model.safetensors")))
struct ModelDirectoryTests {
    /// The tensor names and shapes the upstream modules own (docs/MODEL.md §2, §3.4, §4, §6, §8), as
    /// written for the tiny models (fixtures README §1), from the config and CLIP sizes.
    static func expectedTensors(_ c: ModelConfig, _ clip: CLIPVisionConfig) -> [String: [Int]] {
        var t: [String: [Int]] = [:]
        let lm = c.language
        let h = lm.hiddenSize, hd = lm.headDim, i = lm.intermediateSize
        t["model.embed_tokens.weight"] = [lm.vocabSize, h]
        t["lm_head.weight"] = [lm.vocabSize, h]
        t["model.norm.weight"] = [h]
        for l in 0..<lm.layerCount {
            let p = "model.layers.\(l)."
            t[p + "self_attn.q_proj.weight"] = [lm.headCount * hd, h]
            t[p + "self_attn.k_proj.weight"] = [lm.kvHeadCount * hd, h]
            t[p + "self_attn.v_proj.weight"] = [lm.kvHeadCount * hd, h]
            t[p + "self_attn.o_proj.weight"] = [h, lm.headCount * hd]
            if lm.architecture == .qwen2 {
                t[p + "self_attn.q_proj.bias"] = [lm.headCount * hd]
                t[p + "self_attn.k_proj.bias"] = [lm.kvHeadCount * hd]
                t[p + "self_attn.v_proj.bias"] = [lm.kvHeadCount * hd]
            }
            t[p + "mlp.gate_proj.weight"] = [i, h]
            t[p + "mlp.up_proj.weight"] = [i, h]
            t[p + "mlp.down_proj.weight"] = [h, i]
            t[p + "input_layernorm.weight"] = [h]
            t[p + "post_attention_layernorm.weight"] = [h]
        }

        let v = CLIPVisionConfig.checkpointPrefix, w = clip.hiddenSize
        func ln(_ name: String, _ n: Int) { t[name + ".weight"] = [n]; t[name + ".bias"] = [n] }
        func linear(_ name: String, _ out: Int, _ inp: Int, bias: Bool = true) {
            t[name + ".weight"] = [out, inp]
            if bias { t[name + ".bias"] = [out] }
        }
        t[v + "embeddings.class_embedding"] = [w]
        t[v + "embeddings.patch_embedding.weight"] = [w, 3, clip.patchSize, clip.patchSize]
        t[v + "embeddings.position_embedding.weight"] = [clip.gridSide * clip.gridSide + 1, w]
        ln(v + "pre_layrnorm", w)
        ln(v + "post_layernorm", w)
        for l in 0..<clip.layerCount {
            let p = v + "encoder.layers.\(l)."
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] { linear(p + "self_attn." + proj, w, w) }
            ln(p + "layer_norm1", w)
            ln(p + "layer_norm2", w)
            linear(p + "mlp.fc1", clip.intermediateSize, w)
            linear(p + "mlp.fc2", w, clip.intermediateSize)
        }

        let m = "model.mm_projector.", e = c.projector.embedDim, g = c.projector.tokensPerView
        t[m + "pos_embed"] = [g, e]
        t[m + "query"] = [g, e]
        t[m + "kv_proj.weight"] = [e, c.visionHiddenSize]
        t[m + "attn.in_proj_weight"] = [3 * e, e]
        t[m + "attn.in_proj_bias"] = [3 * e]
        linear(m + "attn.out_proj", e, e)
        t[m + "proj"] = [e, e]
        ln(m + "ln_q", e)
        ln(m + "ln_kv", e)
        ln(m + "ln_post", e)
        if c.projector.kind == .hiwin {
            ln(m + "ln_proj", e)
            linear(m + "cat_proj", e, 4 * e)
            for q in 1...4 { t[m + "query_\(q)"] = [g, e] }
            for level in ["1x", "2x", "4x", "8x"] {
                t[m + "feature_\(level)_embedding"] = [1, 1, e]
                linear(m + "features_\(level)_projector", e, c.visionHiddenSize)
            }
            let u = m + "upsampler."
            ln(u + "model.1.norm", c.visionHiddenSize)
            for k in 1...2 {
                let up = u + "upsampler.up\(k)."
                t[up + "range_temp"] = []
                t[up + "sigma_spatial"] = []
                for (name, out, inp) in [("range_proj.0", 32, 3), ("range_proj.3", 32, 32),
                                         ("fixup_proj.0", 49, 52), ("fixup_proj.3", 49, 49)] {
                    t[up + name + ".weight"] = [out, inp, 1, 1]
                    t[up + name + ".bias"] = [out]
                }
            }
            t[u + "upsampler.fixup_proj.1.weight"] = [c.visionHiddenSize, c.visionHiddenSize, 1, 1]
            t[u + "upsampler.fixup_proj.1.bias"] = [c.visionHiddenSize]
        }
        return t
    }

    @Test(arguments: Fixtures.upstreamCases)
    func tinyModelLoads(_ name: String) throws {
        let dir = Fixtures.model(name)
        let (config, store) = try loadModelDirectory(dir)
        let clip = try config.visionConfig(from: store)

        // CLIP hyper-parameters vs the manifest's record of what upstream built.
        let manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let ref = try #require(manifest["model"]?["clip_inferred_from_shapes"])
        #expect(clip.hiddenSize == ref["hidden_size"]?.intValue)
        #expect(clip.layerCount == ref["num_hidden_layers"]?.intValue)
        #expect(clip.intermediateSize == ref["intermediate_size"]?.intValue)
        #expect(clip.headCount == ref["num_attention_heads"]?.intValue)
        #expect(clip.patchSize == ref["patch_size"]?.intValue)
        #expect(clip.imageSize == ref["image_size"]?.intValue)
        #expect(ref["hidden_act"]?.stringValue == "quick_gelu")
        #expect(clip.layerNormEps == Float(ref["layer_norm_eps"]?.doubleValue ?? 0))
        #expect(clip.selectLayer == config.visionSelectLayer)

        // Every upstream tensor, with its shape, in the manifest's file dtype, and nothing else.
        let dtypes = manifest["model"]?["file_dtypes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(dtypes == ["BF16"])
        let expected = Self.expectedTensors(config, clip)
        for (tensorName, shape) in expected {
            let t = try store.tensor(tensorName, shape: shape, dtypes: [.bf16])
            #expect(store.files[0].file.contains(t.data), "\(tensorName) is a view into the mapping")
        }
        #expect(store.count == expected.count, "unexpected tensors: \(Set(store.names).subtracting(expected.keys).sorted())")
        #expect(store.predominantDType == .bf16)
        #expect(store.totalBytes == store.files[0].file.size - store.files[0].dataOffset)
    }
}
