import Synchronization

/// A loaded model: a LLaVA-UHD model (vision tower, projector and LLM) or a text-only LLM,
/// its memory-mapped weights and the stages built on them. Immutable once loaded, so any
/// number of sessions on any threads may share it.
public final class LlavaModel: @unchecked Sendable {
    /// How to load a model.
    public struct LoadOptions: Sendable {
        /// Threads for compute (the calling thread included).
        public var threads: Int
        /// Called with the load progress in [0, 1]; returning false cancels the load.
        public var progress: (@Sendable (Double) -> Bool)?
        /// How the LLM's prefill (and the vision tower's projections, unless `visionArithmetic`
        /// is set) multiply activations with dense weights (`.float32`: exact; `.bfloat16`: bf16
        /// dot products against BF16 weights where the CPU has AVX512_BF16; `.int8` is for the
        /// vision tower and projector only, the LLM's dense products then run float32).
        /// Decoding stays float32.
        public var matrixArithmetic: MatrixArithmetic
        /// How the vision tower's projections multiply (`Precision.visionArithmetic(on:)`); nil:
        /// `matrixArithmetic`. `.int8` makes Q8_0 copies at load of the tower's weights (about
        /// 310 MB for ViT-L/14-336) and of the Hiwin projector's attention value and out
        /// projections, cat_proj and proj (about 125 MB at a 7B model's width 4096).
        public var visionArithmetic: MatrixArithmetic?
        /// Bytes of encoded images the model's `SharedImageCache` keeps for all its sessions
        /// (0 turns it off). The default, 256 MiB, holds about 15 seven-view images of a 7B
        /// model (7 × 144 × 4096 floats each).
        public var imageCacheBytes: Int
        /// The conversation template of a text-only LLM, overriding the one recognised from its
        /// `chat_template` (needed when recognition fails). Ignored by LLaVA-UHD models, whose
        /// template config.json fixes.
        public var chatTemplate: ChatTemplateKind?
        /// Bytes of KV rows the model's `PrefixCache` keeps for all its sessions. The default, 0,
        /// turns it off: a session's results then never depend on what other sessions did (with
        /// it, reused rows agree to float rounding). `suggestedPrefixCacheBytes`, 512 MiB, holds
        /// the prompts of about two seven-view images of a 7B model in 16-bit storage (0.25 MiB
        /// per position).
        public var prefixCacheBytes: Int
        /// Most sessions whose decode steps share one pass over the LLM's weights when they
        /// decode at the same time (continuous batching, `DecodeBatcher`; each session's tokens
        /// and logits are the ones it gets alone). 1 turns batching off.
        public var maxDecodeBatch: Int

        public static let defaultImageCacheBytes = 256 << 20
        public static let defaultPrefixCacheBytes = 0
        public static let suggestedPrefixCacheBytes = 512 << 20
        public static let defaultMaxDecodeBatch = DecodeBatcher.defaultMaxBatch
        /// The largest `maxDecodeBatch` the C API and the CLI accept (`luhd_model_params.max_decode_batch`).
        public static let largestMaxDecodeBatch = 64

        public init(threads: Int = ComputeContext.defaultThreads, progress: (@Sendable (Double) -> Bool)? = nil,
                    matrixArithmetic: MatrixArithmetic = .float32, visionArithmetic: MatrixArithmetic? = nil,
                    imageCacheBytes: Int = defaultImageCacheBytes,
                    chatTemplate: ChatTemplateKind? = nil, prefixCacheBytes: Int = defaultPrefixCacheBytes,
                    maxDecodeBatch: Int = defaultMaxDecodeBatch) {
            self.threads = max(1, threads)
            self.progress = progress
            self.matrixArithmetic = matrixArithmetic
            self.visionArithmetic = visionArithmetic
            self.imageCacheBytes = max(0, imageCacheBytes)
            self.chatTemplate = chatTemplate
            self.prefixCacheBytes = max(0, prefixCacheBytes)
            self.maxDecodeBatch = max(1, maxDecodeBatch)
        }
    }

    /// The model directory or GGUF file it was loaded from.
    public let path: String
    /// The image half (config.json, CLIP tower, projector); nil for a text-only LLM.
    package let vision: VisionStack?
    /// False for a text-only LLM (a GGUF file or an LLM-only directory), whose image calls fail
    /// with `.unsupported` (`luhd_model_properties.has_vision`).
    public var hasVision: Bool { vision != nil }
    /// The safetensors tensors of the directory (none for a GGUF file alone).
    package let weights: WeightStore
    /// The LLM (LLaMA-2/Vicuna or Qwen2 in LLaVA-UHD; any LLaMA- or Qwen2-architecture LLM).
    package let language: TransformerDecoder
    /// The conversation template; nil for a text-only LLM whose `chat_template` is not one of
    /// the built-in families and none was given (`chat` then refuses, raw evaluation works).
    public let chatTemplate: ChatTemplateKind?
    /// The tokenizer of the model directory (SentencePiece or byte-level BPE), or of the GGUF
    /// LLM's metadata when the directory has no tokenizer files.
    public let tokenizer: any Tokenizer
    /// The GGUF file the LLM comes from (see `GGUFLanguageModel`), or nil when it comes from
    /// the safetensors files.
    package let languageGGUF: GGUFFile?
    /// Threads used for compute.
    public let threads: Int
    /// Encoded images shared by every session of this model (internally locked; see
    /// `SharedImageCache`).
    public let imageCache: SharedImageCache
    /// KV rows of prompt prefixes shared by every session of this model (internally locked;
    /// see `PrefixCache`).
    public let prefixCache: PrefixCache
    /// The vision path's working memory kept between images, for every session of this model
    /// (internally locked: a call takes it out, so concurrent calls never share it; bounded by
    /// `VisionScratch.retainedBytes` a kind; see `VisionScratch`).
    package let visionScratch = VisionScratch()
    /// `digest`, computed on first use.
    let digestMemo = Mutex<[UInt8]?>(nil)

    /// The LLM's hyper-parameters (config.json's, or the GGUF file's).
    package var languageConfig: LanguageModelConfig { language.config }

    /// Loads and validates a model (see `luhd_model_load`):
    ///
    /// * a LLaVA-UHD directory (config.json with a LLaVA `model_type`): config.json, the weight
    ///   files, every tensor of every stage, then the tokenizer. The LLM comes from a GGUF file
    ///   when the directory names or holds one (`GGUFLanguageModel`);
    /// * a text-only LLM: a LLaMA- or Qwen2-architecture `.gguf` file, or a directory holding
    ///   one (`GGUFLanguageModel.locate`) or holding safetensors with a config.json of
    ///   `model_type` `llama` / `qwen2` (`LanguageModelConfig(configJSON:)`). Its template is
    ///   recognised from the `chat_template` (`ChatTemplateKind.detect`) unless
    ///   `options.chatTemplate` gives it.
    ///
    /// Matrices may be quantized (`ModelQuantizer`, or the GGUF file's types).
    public init(path: String, options: LoadOptions = LoadOptions()) throws(LlavaError) {
        let isFile = fileExists(path)
        guard isFile || directoryExists(path) else { throw LlavaError(.io, "'\(path)' is neither a model directory nor a GGUF file") }
        try BLAS.load()
        let progress = options.progress
        func report(_ fraction: Double) throws(LlavaError) {
            if let progress, !progress(fraction) {
                throw LlavaError(.cancelled, "model loading cancelled by the progress callback")
            }
        }
        self.path = path
        self.threads = options.threads
        imageCache = SharedImageCache(byteCapacity: options.imageCacheBytes)
        prefixCache = PrefixCache(byteCapacity: options.prefixCacheBytes)
        if isFile {
            // A GGUF file alone: a text-only LLM with its own tokenizer and template.
            let gguf = try GGUFFile(path: path)
            try report(0.5)
            weights = try WeightStore(paths: [])
            vision = nil
            languageGGUF = gguf
            language = try TransformerDecoder(gguf: gguf, arithmetic: options.matrixArithmetic,
                                                  maxDecodeBatch: options.maxDecodeBatch)
            tokenizer = try Tokenizers.load(gguf: gguf)
            chatTemplate = options.chatTemplate ?? gguf.string("tokenizer.chat_template").flatMap(ChatTemplateKind.detect)
        } else {
            let configPath = path + "/config.json"
            let configJSON: JSONValue? = pathExists(configPath) ? try ModelConfig.readJSON(configPath) : nil
            var llava: ModelConfig?
            if let configJSON, !LanguageModelConfig.describesLanguageModelOnly(configJSON) {
                llava = try ModelConfig(json: configJSON, source: configPath)
            }
            try report(0.01)
            let ggufPath = try GGUFLanguageModel.locate(directory: path, named: llava?.languageGGUFName)
            guard configJSON != nil || ggufPath != nil else {
                throw LlavaError(.badConfig, "'\(configPath)' does not exist: a model directory needs a config.json (or a GGUF LLM)")
            }
            let hasSafetensors = pathExists(path + "/" + WeightStore.singleFileName) || pathExists(path + "/" + WeightStore.indexFileName)
            weights = llava != nil || ggufPath == nil || hasSafetensors
                ? try WeightStore(directory: path, progress: progress.map { p in { p(0.01 + 0.8 * $0) } })
                : try WeightStore(paths: [])
            if let llava {
                vision = try VisionStack(config: llava, weights: weights,
                                         arithmetic: options.visionArithmetic ?? options.matrixArithmetic,
                                         threads: options.threads)
            } else {
                vision = nil
            }
            // config.json's LLM (LLaVA or plain), when there is one.
            var declared = llava?.language
            if llava == nil, let configJSON { declared = try LanguageModelConfig(configJSON: configJSON, source: configPath) }
            if let ggufPath {
                let gguf = try GGUFFile(path: ggufPath)
                languageGGUF = gguf
                let config = if let declared { try GGUFLanguageModel.reconcile(declared, with: gguf) }
                    else { try LanguageModelConfig(gguf: gguf) }
                language = try TransformerDecoder(config: config, gguf: gguf, arithmetic: options.matrixArithmetic,
                                                  maxDecodeBatch: options.maxDecodeBatch)
            } else {
                guard let declared else { throw LlavaError(.badConfig, "'\(path)' has no config.json and no GGUF file") }
                languageGGUF = nil
                language = try TransformerDecoder(config: declared, weights: weights, arithmetic: options.matrixArithmetic,
                                                  maxDecodeBatch: options.maxDecodeBatch)
            }
            try report(0.9)
            if let gguf = languageGGUF, !Tokenizers.hasFiles(in: path) {
                tokenizer = try Tokenizers.load(gguf: gguf)
            } else {
                tokenizer = try Tokenizers.load(directory: path)
            }
            if let llava {
                chatTemplate = llava.chatTemplate
            } else {
                let text = Tokenizers.hasFiles(in: path) ? try TokenizerConfig.load(directory: path).chatTemplate
                    : languageGGUF?.string("tokenizer.chat_template")
                chatTemplate = options.chatTemplate ?? text.flatMap(ChatTemplateKind.detect)
            }
        }
        guard tokenizer.vocabularySize <= language.config.vocabSize else {
            throw LlavaError(.badTokenizer, "the tokenizer has \(tokenizer.vocabularySize) tokens but the LLM's "
                             + "embedding table only \(language.config.vocabSize) rows")
        }
        try report(1.0)
    }

    /// The image half, or `.unsupported` naming `what` needed it when the model is a text-only LLM.
    package func requireVision(for what: String) throws(LlavaError) -> VisionStack {
        guard let vision else {
            throw LlavaError(.unsupported, "\(what) needs a vision tower, but '\(path)' is a text-only LLM")
        }
        return vision
    }

    /// Tensors the model uses: safetensors and GGUF.
    package var tensorCount: Int { weights.count + (languageGGUF?.tensors.count ?? 0) }
    /// Bytes of tensor data in all files.
    package var tensorBytes: Int { weights.totalBytes + (languageGGUF?.tensors.reduce(0) { $0 + $1.byteCount } ?? 0) }

    /// A compute context using the model's threads, the given abort callback and the model's
    /// `visionScratch`.
    public func computeContext(shouldAbort: (() -> Bool)? = nil) -> ComputeContext {
        var context = ComputeContext(threads: threads, shouldAbort: shouldAbort)
        context.visionScratch = visionScratch
        return context
    }
}
