/// A loaded LLaVA-UHD model: its config, memory-mapped weights and the stages built on them.
/// Immutable once loaded, so any number of sessions on any threads may share it.
public final class LlavaModel: @unchecked Sendable {
    /// How to load a model.
    public struct LoadOptions: Sendable {
        /// Threads for compute (the calling thread included).
        public var threads: Int
        /// Called with the load progress in [0, 1]; returning false cancels the load.
        public var progress: (@Sendable (Double) -> Bool)?
        /// How the vision tower's projections and the LLM's prefill multiply activations with
        /// dense weights (`.float32`: exact; `.bfloat16`: bf16 dot products against BF16 weights
        /// where the CPU has AVX512_BF16). The projector and decoding stay float32.
        public var matrixArithmetic: MatrixArithmetic
        /// Bytes of encoded images the model's `SharedImageCache` keeps for all its sessions
        /// (0 turns it off). The default, 256 MiB, holds about 15 seven-view images of a 7B
        /// model (7 × 144 × 4096 floats each).
        public var imageCacheBytes: Int
        /// Most sessions whose decode steps share one pass over the LLM's weights when they
        /// decode at the same time (continuous batching, `DecodeBatcher`; each session's tokens
        /// and logits are the ones it gets alone). 1 turns batching off.
        public var maxDecodeBatch: Int

        public static let defaultImageCacheBytes = 256 << 20
        public static let defaultMaxDecodeBatch = DecodeBatcher.defaultMaxBatch

        public init(threads: Int = ComputeContext.defaultThreads, progress: (@Sendable (Double) -> Bool)? = nil,
                    matrixArithmetic: MatrixArithmetic = .float32, imageCacheBytes: Int = defaultImageCacheBytes,
                    maxDecodeBatch: Int = defaultMaxDecodeBatch) {
            self.threads = max(1, threads)
            self.progress = progress
            self.matrixArithmetic = matrixArithmetic
            self.imageCacheBytes = max(0, imageCacheBytes)
            self.maxDecodeBatch = max(1, maxDecodeBatch)
        }
    }

    /// The model directory.
    public let directory: String
    public let config: ModelConfig
    /// The CLIP tower's hyper-parameters, inferred from its tensors.
    package let visionConfig: CLIPVisionConfig
    package let weights: WeightStore
    /// The CLIP vision tower.
    package let vision: CLIPVisionEncoder
    /// The projector: VDIM + Hiwin (LLaVA-UHD v2) or the v1 resampler.
    package let projector: any Projector
    /// The LLM (LLaMA-2/Vicuna or Qwen2).
    package let language: TransformerDecoder
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

    /// Loads and validates a model directory (see `luhd_model_load`). Order: config.json,
    /// the weight files, every tensor of every stage, then the tokenizer. The LLM comes from a
    /// GGUF file when the directory names or holds one (`GGUFLanguageModel`); its matrices may be
    /// quantized (`ModelQuantizer`, or the GGUF file's types).
    public init(directory: String, options: LoadOptions = LoadOptions()) throws(LlavaError) {
        guard directoryExists(directory) else { throw LlavaError(.io, "'\(directory)' is not a directory") }
        try BLAS.load()
        let progress = options.progress
        func report(_ fraction: Double) throws(LlavaError) {
            if let progress, !progress(fraction) {
                throw LlavaError(.cancelled, "model loading cancelled by the progress callback")
            }
        }
        self.directory = directory
        self.threads = options.threads
        imageCache = SharedImageCache(byteCapacity: options.imageCacheBytes)
        config = try ModelConfig(directory: directory)
        try report(0.01)
        weights = try WeightStore(directory: directory, progress: progress.map { p in { p(0.01 + 0.8 * $0) } })
        visionConfig = try config.visionConfig(from: weights)
        vision = try CLIPVisionEncoder(store: weights, prefix: CLIPVisionConfig.checkpointPrefix, config: visionConfig,
                                       arithmetic: options.matrixArithmetic)
        projector = try config.projector.makeProjector(weights: weights)
        if let ggufPath = try GGUFLanguageModel.locate(directory: directory, named: config.languageGGUFName) {
            let gguf = try GGUFFile(path: ggufPath)
            languageGGUF = gguf
            language = try TransformerDecoder(config: GGUFLanguageModel.reconcile(config.language, with: gguf), gguf: gguf,
                                              arithmetic: options.matrixArithmetic, maxDecodeBatch: options.maxDecodeBatch)
        } else {
            languageGGUF = nil
            language = try TransformerDecoder(config: config.language, weights: weights, arithmetic: options.matrixArithmetic,
                                              maxDecodeBatch: options.maxDecodeBatch)
        }
        try report(0.9)
        if let gguf = languageGGUF, !Tokenizers.hasFiles(in: directory) {
            tokenizer = try Tokenizers.load(gguf: gguf)
        } else {
            tokenizer = try Tokenizers.load(directory: directory)
        }
        guard tokenizer.vocabularySize <= config.language.vocabSize else {
            throw LlavaError(.badTokenizer, "the tokenizer has \(tokenizer.vocabularySize) tokens but the LLM's "
                             + "embedding table only \(config.language.vocabSize) rows")
        }
        try report(1.0)
    }

    /// A compute context using the model's threads and the given abort callback.
    public func computeContext(shouldAbort: (() -> Bool)? = nil) -> ComputeContext {
        ComputeContext(threads: threads, shouldAbort: shouldAbort)
    }
}
