/// What a model directory's `config.json` says, checked and resolved into the stage configs.
///
/// Two upstream code bases wrote these files (docs/MODEL.md §0, §7, §8):
///
/// * branch `old-vicuna-7b` (the Vicuna-7B release): `model_type: llava_llama`,
///   `mm_projector_type: adapt_spatial_resampler` with `feature_mode: featup_muti_res` (Hiwin +
///   VDIM), or `adapt_spatial_resampler_v1` with `feature_mode: uhd_v1` or no `feature_mode`
///   (the v1 resampler); no `model_mode` key. Stitched-grid token layout, vicuna_v1 template.
/// * branch `LLaVA-UHD-v2` (the Qwen2-7B and Vicuna-13B releases): `model_mode: uhd_v2` with
///   `mm_projector_type: adapt_spatial_resampler_v2` (Hiwin + VDIM), or `model_mode: uhd_v1`
///   with `adapt_spatial_resampler_v1`; `model_type: llava_qwen` or `llava_llama`. Per-slice
///   token layout; Qwen2 ChatML for Qwen2, vicuna_v1 for a LLaMA/Vicuna LLM.
///
/// Defaults are used only where upstream has one, and each is named where it is applied.
/// Errors: `.badConfig` for a missing file, invalid JSON, a missing required key, a value of
/// the wrong JSON type or out of range, and keys that contradict each other (the message names
/// both); `.unsupported` for architectures, projector types, modes and options this library
/// does not run.
public struct ModelConfig: Sendable, Equatable {
    /// The LLM.
    public var language: LanguageModelConfig
    /// The projector (Hiwin + VDIM, or the v1 resampler).
    public var projector: ProjectorConfig
    /// How image tokens are laid out in the LLM input.
    public var imageTokenLayout: ImageTokenLayout
    /// The conversation template.
    public var chatTemplate: ChatTemplateKind
    /// `mm_vision_select_layer`: which CLIP hidden state feeds the projector, Python-style
    /// index into the L + 1 hidden states (−2 in every release).
    public var visionSelectLayer: Int
    /// `mm_hidden_size`: the width of the CLIP features entering the projector (1024).
    public var visionHiddenSize: Int
    /// `tokenizer_model_max_length`: upstream truncates the merged input to this many
    /// positions; nil when the key is absent or null (upstream then does not truncate).
    public var tokenizerModelMaxLength: Int?
    /// `llm_gguf` (`GGUFLanguageModel.configKey`): the GGUF file the LLM comes from, relative to
    /// the model directory or absolute; nil when the key is absent.
    public var languageGGUFName: String? = nil

    /// Qwen2's `<|endoftext|>`, which ends generation in addition to the configured EOS.
    public static let qwen2EndOfText = 151643

    public init(language: LanguageModelConfig, projector: ProjectorConfig, imageTokenLayout: ImageTokenLayout,
                chatTemplate: ChatTemplateKind, visionSelectLayer: Int, visionHiddenSize: Int,
                tokenizerModelMaxLength: Int?) {
        self.language = language
        self.projector = projector
        self.imageTokenLayout = imageTokenLayout
        self.chatTemplate = chatTemplate
        self.visionSelectLayer = visionSelectLayer
        self.visionHiddenSize = visionHiddenSize
        self.tokenizerModelMaxLength = tokenizerModelMaxLength
    }

    /// Reads `directory/config.json`. Throws `.io` if the directory does not exist and
    /// `.badConfig` if config.json is missing, unreadable as JSON, or wrong (see the type's
    /// documentation).
    public init(directory: String) throws(LlavaError) {
        guard directoryExists(directory) else {
            throw LlavaError(.io, "model directory '\(directory)' does not exist or is not a directory")
        }
        let path = directory + "/config.json"
        guard pathExists(path) else { throw LlavaError(.badConfig, "'\(path)' does not exist: a model directory needs a config.json") }
        try self.init(json: try Self.readJSON(path), source: path)
    }

    /// Parses config.json bytes; `source` names the file in messages.
    public init(bytes: [UInt8], source: String = "config.json") throws(LlavaError) {
        try self.init(json: try Self.parseJSON(bytes, source: source), source: source)
    }

    /// Reads and parses a config.json (LLaVA-UHD's or a plain LLM's): `.io` when unreadable,
    /// `.badConfig` when not JSON.
    package static func readJSON(_ path: String) throws(LlavaError) -> JSONValue {
        try parseJSON(try readWholeFile(path, limit: 16 << 20), source: path)
    }

    private static func parseJSON(_ bytes: [UInt8], source: String) throws(LlavaError) -> JSONValue {
        do { return try JSONValue.parse(bytes, maxDepth: 64) } catch {
            throw LlavaError(.badConfig, "\(source): not valid JSON (\(error))")
        }
    }

    /// Resolves a parsed config.json; `source` names the file in messages.
    package init(json: JSONValue, source: String = "config.json") throws(LlavaError) {
        let c = try ConfigKeys(json, source: source)

        // ---- LLM architecture
        let modelType = try c.requiredString("model_type")
        let architecture: LanguageModelConfig.Architecture
        switch modelType {
        case "llava_llama": architecture = .llama
        case "llava_qwen": architecture = .qwen2
        default:
            throw c.unsupported("model_type '\(modelType)' is not supported (supported: llava_llama, llava_qwen)")
        }

        // ---- projector, upstream branch, layout, template
        let projectorType = try c.requiredString("mm_projector_type")
        let modelMode = try c.string("model_mode")
        let featureMode = try c.string("feature_mode")
        if let modelMode, modelMode != "uhd_v2", modelMode != "uhd_v1" {
            throw c.unsupported(modelMode == "llava"
                ? "model_mode 'llava' (plain LLaVA image features, no slicing) is not supported"
                : "model_mode '\(modelMode)' is not supported (supported: uhd_v2, uhd_v1)")
        }
        if let featureMode, featureMode != "featup_muti_res", featureMode != "uhd_v1" {
            throw c.unsupported("feature_mode '\(featureMode)' is not supported (supported: featup_muti_res, uhd_v1)")
        }
        let kind: ProjectorConfig.Kind
        let newBranch: Bool
        switch projectorType {
        case "adapt_spatial_resampler":
            // old-vicuna-7b: the pyramid path runs only with feature_mode featup_muti_res
            // (llava_arch.py reads an absent feature_mode as 'uhd_v1').
            kind = .hiwin
            newBranch = false
            if let modelMode {
                throw c.bad("model_mode '\(modelMode)' (LLaVA-UHD-v2 branch) contradicts mm_projector_type 'adapt_spatial_resampler' (old-vicuna-7b branch; the v2 branch's Hiwin type is 'adapt_spatial_resampler_v2')")
            }
            guard let featureMode else {
                throw c.bad("mm_projector_type 'adapt_spatial_resampler' needs feature_mode 'featup_muti_res', but feature_mode is absent (upstream then uses 'uhd_v1')")
            }
            if featureMode != "featup_muti_res" {
                throw c.bad("feature_mode '\(featureMode)' contradicts mm_projector_type 'adapt_spatial_resampler' (the Hiwin projector needs feature_mode 'featup_muti_res')")
            }
            if architecture == .qwen2 {
                throw c.bad("model_type 'llava_qwen' contradicts mm_projector_type 'adapt_spatial_resampler': the old-vicuna-7b branch has no Qwen2 model")
            }
        case "adapt_spatial_resampler_v2":
            kind = .hiwin
            newBranch = true
            guard let modelMode else {
                throw c.missing("model_mode", because: "mm_projector_type 'adapt_spatial_resampler_v2' runs only with model_mode 'uhd_v2'; upstream reads an absent model_mode as 'llava'")
            }
            if modelMode != "uhd_v2" {
                throw c.bad("model_mode '\(modelMode)' contradicts mm_projector_type 'adapt_spatial_resampler_v2' (the Hiwin projector needs model_mode 'uhd_v2')")
            }
            if featureMode == "uhd_v1" {
                throw c.bad("feature_mode 'uhd_v1' contradicts mm_projector_type 'adapt_spatial_resampler_v2' (a Hiwin projector)")
            }
        case "adapt_spatial_resampler_v1":
            kind = .uhdV1
            newBranch = modelMode != nil
            if modelMode == "uhd_v2" {
                throw c.bad("model_mode 'uhd_v2' contradicts mm_projector_type 'adapt_spatial_resampler_v1' (uhd_v2 runs the Hiwin projector; the v1 resampler needs model_mode 'uhd_v1')")
            }
            if featureMode == "featup_muti_res" {
                throw c.bad("feature_mode 'featup_muti_res' contradicts mm_projector_type 'adapt_spatial_resampler_v1' (featup_muti_res runs the Hiwin projector)")
            }
            if !newBranch, architecture == .qwen2 {
                throw c.bad("model_type 'llava_qwen' needs model_mode (LLaVA-UHD-v2 branch), but model_mode is absent (old-vicuna-7b branch, which has no Qwen2 model)")
            }
        default:
            throw c.unsupported("mm_projector_type '\(projectorType)' is not supported (supported: adapt_spatial_resampler, adapt_spatial_resampler_v2, adapt_spatial_resampler_v1)")
        }

        // ---- feature pyramid levels (Hiwin only)
        var featureScaleMask = 0
        if kind == .hiwin {
            // Default 7 when absent: AdaptSpatialResampler reads getattr(config, 'feature_scale_mask', 7)
            // in both branches (and train.py's default is 7; the v2 release scripts pass 5 explicitly).
            let mask = try c.int("feature_scale_mask") ?? 7
            guard (1...15).contains(mask) else {
                throw c.bad("feature_scale_mask \(mask) is outside 1...15 (a bit set of the levels 1=1x, 2=2x, 4=4x, 8=8x of mm_projector_type '\(projectorType)')")
            }
            guard mask & 1 != 0 else {
                throw c.bad("feature_scale_mask \(mask) lacks the 1x bit (1), which mm_projector_type '\(projectorType)' always reads (upstream prepare_single_key_value takes its batch size from the 1x level)")
            }
            guard mask & 8 == 0 else {
                throw c.unsupported("feature_scale_mask \(mask) asks for the 8x level, which upstream cannot run (JBU8xStack has no forward_with_internal_features)")
            }
            guard mask & 6 != 0 else {
                throw c.bad("feature_scale_mask \(mask) selects no upsampled level: mm_projector_type '\(projectorType)' then builds no VDIM upsampler upstream (legal masks: 3, 5, 7)")
            }
            featureScaleMask = mask
        }

        // ---- vision side
        if try c.bool("mm_use_im_start_end") == true {  // upstream default False
            throw c.unsupported("mm_use_im_start_end true (image start/end tokens) is not supported")
        }
        let selectFeature = try c.string("mm_vision_select_feature") ?? "patch"  // upstream default 'patch'
        if selectFeature != "patch" {
            throw c.unsupported("mm_vision_select_feature '\(selectFeature)' is not supported (only 'patch')")
        }
        let selectLayer = try c.requiredInt("mm_vision_select_layer")  // clip_encoder.py reads it without a default
        let visionHidden = try c.requiredInt("mm_hidden_size")         // the projectors read it without a default
        guard visionHidden > 0 else { throw c.bad("mm_hidden_size \(visionHidden) must be positive") }
        if projectorType == "adapt_spatial_resampler", visionHidden != 1024 {
            throw c.bad("mm_hidden_size \(visionHidden) contradicts mm_projector_type 'adapt_spatial_resampler', whose pyramid projectors and VDIM take 1024 channels")
        }

        // ---- LLM
        let language = try LanguageModelConfig(keys: c, architecture: architecture)
        guard language.hiddenSize % 128 == 0 else {
            throw c.bad("hidden_size \(language.hiddenSize) is not a multiple of 128, but mm_projector_type '\(projectorType)' uses hidden_size/128 attention heads of width 128")
        }
        guard language.vocabSize > SlicePlan.Separator.allCases.map(ImageTokenLayout.tokenID(of:)).max() ?? 0 else {
            throw c.bad("vocab_size \(language.vocabSize) has no embedding row for the slice separator id 29892 that mm_projector_type '\(projectorType)' models insert")
        }

        let maxLength = try c.int("tokenizer_model_max_length", nullIsAbsent: true)
        if let maxLength, maxLength <= 0 { throw c.bad("tokenizer_model_max_length \(maxLength) must be positive") }
        let ggufName = try c.string(GGUFLanguageModel.configKey)
        if ggufName?.isEmpty == true { throw c.bad("'\(GGUFLanguageModel.configKey)' must be a file name") }

        self.language = language
        self.projector = ProjectorConfig(kind: kind, featureScaleMask: featureScaleMask,
                                         visionHiddenSize: visionHidden, embedDim: language.hiddenSize, gridSize: 12)
        self.imageTokenLayout = newBranch ? .perSlice : .stitchedGrid
        self.chatTemplate = newBranch && architecture == .qwen2 ? .qwen2ChatML : .vicunaV1
        self.visionSelectLayer = selectLayer
        self.visionHiddenSize = visionHidden
        self.tokenizerModelMaxLength = maxLength
        self.languageGGUFName = ggufName
    }

    /// Infers the CLIP tower's hyper-parameters from `store` (the release has no CLIP config),
    /// with this config's `mm_vision_select_layer`, and checks that the tower's width is
    /// `mm_hidden_size` (`.tensorMismatch` otherwise).
    package func visionConfig(from store: WeightStore) throws(LlavaError) -> CLIPVisionConfig {
        let clip = try CLIPVisionConfig.infer(from: store, selectLayer: visionSelectLayer)
        guard clip.hiddenSize == visionHiddenSize else {
            throw LlavaError(.tensorMismatch,
                             "the CLIP tower is \(clip.hiddenSize) wide (embeddings.class_embedding) but config.json mm_hidden_size is \(visionHiddenSize)")
        }
        return clip
    }
}

/// The plain LLM directories (no vision tower) and the LLM part of a LLaVA config.json.
extension LanguageModelConfig {
    /// The `model_type`s of a Hugging Face LLM directory this library runs as a text-only
    /// model: `LlamaForCausalLM` (`llama`) and `Qwen2ForCausalLM` (`qwen2`).
    static let languageOnlyModelTypes: [String: Architecture] = ["llama": .llama, "qwen2": .qwen2]

    /// True when `json` (a config.json) describes a plain LLM (`model_type` `llama` or `qwen2`)
    /// rather than a LLaVA-UHD model.
    package static func describesLanguageModelOnly(_ json: JSONValue) -> Bool {
        json["model_type"]?.stringValue.flatMap { languageOnlyModelTypes[$0] } != nil
    }

    /// The config.json of a plain LLM directory (`model_type` `llama` or `qwen2`), with the
    /// same keys, defaults and checks as the LLM part of a LLaVA config.json (see `ModelConfig`).
    package init(configJSON json: JSONValue, source: String = "config.json") throws(LlavaError) {
        let c = try ConfigKeys(json, source: source)
        let modelType = try c.requiredString("model_type")
        guard let architecture = Self.languageOnlyModelTypes[modelType] else {
            throw c.unsupported("model_type '\(modelType)' is not a supported text-only LLM (supported: llama, qwen2)")
        }
        try self.init(keys: c, architecture: architecture)
    }

    /// The LLM keys of a config.json: sizes, norms, RoPE, special tokens.
    fileprivate init(keys c: ConfigKeys, architecture: Architecture) throws(LlavaError) {
        let hidden = try c.requiredPositive("hidden_size")
        let intermediate = try c.requiredPositive("intermediate_size")
        let layers = try c.requiredPositive("num_hidden_layers")
        let heads = try c.requiredPositive("num_attention_heads")
        let vocab = try c.requiredPositive("vocab_size")
        // Default: num_attention_heads when absent or null (LlamaConfig / Qwen2Config).
        let kvHeads = try c.int("num_key_value_heads", nullIsAbsent: true) ?? heads
        guard kvHeads > 0 else { throw c.bad("num_key_value_heads \(kvHeads) must be positive") }
        guard hidden % heads == 0 else {
            throw c.bad("hidden_size \(hidden) is not divisible by num_attention_heads \(heads)")
        }
        guard heads % kvHeads == 0 else {
            throw c.bad("num_key_value_heads \(kvHeads) does not divide num_attention_heads \(heads)")
        }
        // Defaults from transformers 4.37 LlamaConfig / Qwen2Config: rms_norm_eps 1e-6,
        // rope_theta 10000, max_position_embeddings 2048 (LLaMA) / 32768 (Qwen2),
        // tie_word_embeddings false, hidden_act silu.
        let eps = try c.number("rms_norm_eps") ?? 1e-6
        guard eps > 0, eps < 1 else { throw c.bad("rms_norm_eps \(eps) must be in (0, 1)") }
        let theta = try c.number("rope_theta") ?? 10000
        guard theta > 1, theta.isFinite else { throw c.bad("rope_theta \(theta) must be greater than 1") }
        let maxPositions = try c.int("max_position_embeddings") ?? (architecture == .llama ? 2048 : 32768)
        guard maxPositions > 0 else { throw c.bad("max_position_embeddings \(maxPositions) must be positive") }
        let tie = try c.bool("tie_word_embeddings") ?? false
        if let scaling = c.value("rope_scaling"), !scaling.isNull {
            throw c.unsupported("rope_scaling (\(scaling.briefDescription)) is not supported; only null is")
        }
        let act = try c.string("hidden_act") ?? "silu"
        if act != "silu" { throw c.unsupported("hidden_act '\(act)' is not supported (only silu)") }
        switch architecture {
        case .llama:
            if try c.bool("attention_bias") == true {  // LlamaConfig default False
                throw c.unsupported("attention_bias true (LLaMA attention with biases) is not supported")
            }
        case .qwen2:
            if try c.bool("use_sliding_window") == true {  // Qwen2Config default False
                throw c.unsupported("use_sliding_window true (Qwen2 sliding-window attention) is not supported")
            }
        }

        // ---- special tokens
        let bos: Int?
        var eos: [Int]
        switch architecture {
        case .llama:
            // LlamaConfig defaults: bos 1, eos 2; an explicit null bos means no BOS.
            if let v = c.value("bos_token_id"), v.isNull { bos = nil } else { bos = try c.int("bos_token_id") ?? 1 }
            eos = try c.intOrIntList("eos_token_id") ?? [2]
        case .qwen2:
            // The Qwen2 tokenizer adds no BOS: config.json's bos_token_id (151643,
            // <|endoftext|>) is never prepended, so it is only type-checked. Qwen2Config has no
            // eos default, so eos_token_id is required; generation also stops at <|endoftext|>.
            _ = try c.int("bos_token_id", nullIsAbsent: true)
            bos = nil
            guard let ids = try c.intOrIntList("eos_token_id") else {
                throw c.missing("eos_token_id", because: "Qwen2 has no default end-of-sequence id")
            }
            eos = ids + (ModelConfig.qwen2EndOfText < vocab ? [ModelConfig.qwen2EndOfText] : [])
        }
        var unique = Set<Int>()
        eos = eos.filter { unique.insert($0).inserted }
        if let bos, !(0..<vocab).contains(bos) {
            throw c.bad("bos_token_id \(bos) is outside vocab_size \(vocab)")
        }
        if let bad = eos.first(where: { !(0..<vocab).contains($0) }) {
            throw c.bad("eos_token_id \(bad) is outside vocab_size \(vocab)")
        }

        self.init(
            architecture: architecture, hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers,
            headCount: heads, kvHeadCount: kvHeads, vocabSize: vocab, rmsNormEps: Float(eps), ropeTheta: Float(theta),
            maxPositionEmbeddings: maxPositions, tieWordEmbeddings: tie, bosTokenId: bos, eosTokenIds: eos)
    }
}

/// Typed access to the keys of a config.json object, with messages that name the file and key.
private struct ConfigKeys {
    let members: [(String, JSONValue)]
    let source: String

    init(_ json: JSONValue, source: String) throws(LlavaError) {
        self.source = source
        guard case .object(let members) = json else {
            throw LlavaError(.badConfig, "\(source): the top level is not a JSON object")
        }
        var seen = Set<String>()
        for (key, _) in members where !seen.insert(key).inserted {
            throw LlavaError(.badConfig, "\(source): key '\(key)' appears twice")
        }
        self.members = members
    }

    func bad(_ what: String) -> LlavaError { LlavaError(.badConfig, "\(source): \(what)") }
    func unsupported(_ what: String) -> LlavaError { LlavaError(.unsupported, "\(source): \(what)") }
    func missing(_ key: String, because why: String? = nil) -> LlavaError {
        LlavaError(.badConfig, "\(source): missing required key '\(key)'" + (why.map { " (\($0))" } ?? ""))
    }
    func wrongType(_ key: String, _ expected: String, _ v: JSONValue) -> LlavaError {
        LlavaError(.badConfig, "\(source): key '\(key)' must be \(expected), found \(v.briefDescription)")
    }

    func value(_ key: String) -> JSONValue? { members.first(where: { $0.0 == key })?.1 }

    func string(_ key: String) throws(LlavaError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw wrongType(key, "a string", v) }
        return s
    }

    func requiredString(_ key: String) throws(LlavaError) -> String {
        guard let s = try string(key) else { throw missing(key) }
        return s
    }

    /// An integer literal; with `nullIsAbsent`, an explicit null reads as absent (for keys whose
    /// upstream code treats None like a missing key). Every integer must fit in 32 bits, as the
    /// C ABI reports them (`luhd_model_get_properties`) and no real model comes near: a larger value is
    /// `.badConfig` here, naming the key, rather than a trap later.
    func int(_ key: String, nullIsAbsent: Bool = false) throws(LlavaError) -> Int? {
        guard let v = value(key) else { return nil }
        if nullIsAbsent, v.isNull { return nil }
        guard case .int(let i) = v else { throw wrongType(key, "an integer", v) }
        guard let narrow = Int32(exactly: i) else {
            throw bad("\(key) \(i) is outside the 32-bit range \(Int32.min)...\(Int32.max)")
        }
        return Int(narrow)
    }

    func requiredInt(_ key: String) throws(LlavaError) -> Int {
        guard let i = try int(key) else { throw missing(key) }
        return i
    }

    func requiredPositive(_ key: String) throws(LlavaError) -> Int {
        let i = try requiredInt(key)
        guard i > 0 else { throw bad("\(key) \(i) must be positive") }
        return i
    }

    func number(_ key: String) throws(LlavaError) -> Double? {
        guard let v = value(key) else { return nil }
        guard let d = v.doubleValue else { throw wrongType(key, "a number", v) }
        return d
    }

    func bool(_ key: String) throws(LlavaError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw wrongType(key, "true or false", v) }
        return b
    }

    /// An integer or a non-empty list of integers (transformers allows both for eos_token_id).
    func intOrIntList(_ key: String) throws(LlavaError) -> [Int]? {
        guard let v = value(key) else { return nil }
        switch v {
        case .int(let i) where Int32(exactly: i) != nil: return [i]
        case .array(let items) where !items.isEmpty:
            var out: [Int] = []
            for item in items {
                guard case .int(let i) = item, Int32(exactly: i) != nil else {
                    throw wrongType(key, "an integer or a list of 32-bit integers", v)
                }
                out.append(i)
            }
            return out
        default: throw wrongType(key, "an integer or a non-empty list of integers", v)
        }
    }

}
