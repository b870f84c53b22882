import Synchronization

/// The LLM of LLaVA-UHD: a LLaMA-2 (Vicuna v1.5) or Qwen2 decoder-only transformer
/// (docs/MODEL.md §6), run in float32 from weights that stay in the memory mapping: BF16 in the
/// releases (F16 and F32 work too), or block-quantized (Q8_0, Q4_0 written by
/// `ModelQuantizer`; any block format of `QuantFormat` from GGUF files). Nothing is converted as a whole:
/// matrix products widen or dequantize weight tiles as they go.
///
/// Built from a `WeightStore` under the Hugging Face names (`model.embed_tokens`,
/// `model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
/// mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head`), or from a GGUF file under llama.cpp's
/// names (`GGUFDecoderSource`); every tensor is checked at init.
///
/// Inputs are embeddings (`[L × hidden]` float32; image tokens are spliced in by
/// `MultimodalInput`) or token ids. `eval` appends the positions to a `KVCache` and returns
/// logits: prefill runs whole-sequence matrix products (in passes of at most `batchSize` positions),
/// decoding one position is bound by reading the weights once. Both use
/// `ComputeContext.threads`; the abort callback is polled before every layer.
///
/// Immutable after init: any number of threads may evaluate with their own caches at once.
/// One-position evaluations (decoding) that happen at the same time share passes over the
/// weights (`DecodeBatcher`, up to `maxDecodeBatch` caches per pass), with each cache's results
/// bit for bit the ones it gets alone.
package final class TransformerDecoder: Sendable {
    package let config: LanguageModelConfig
    package let rope: RotaryEmbedding
    /// Most positions per forward pass during prefill. A longer input is split into the
    /// fewest passes of equal size: each pass widens every BF16/F16 weight tile once, so
    /// fewer passes convert less, while the activations take about
    /// `batchSize · (5·hidden + 2·intermediate) · 4` bytes (1024 positions: 174 MB for
    /// Vicuna-7B; the largest is kept between prefills, `spareWorkspace`). Results do not depend
    /// on it beyond float rounding.
    package let batchSize: Int
    /// How activations meet dense weights in the matrix products (`.float32`: exact float32
    /// products; `.bfloat16`: bf16 dot products in prefill where the CPU has them).
    package let arithmetic: MatrixArithmetic
    /// The kernel family forced on quantized weights (nil: `QuantKernel.preferred(for:)`, and
    /// the copies `InterleavingDecoderSource` makes: row-interleaved Q8_0 / Q4_0 / Q4_K matrices
    /// for the int8 VNNI kernels where the CPU has them, else scale-grouped or huge-page copies
    /// for the int8 AVX2 kernels; a forced kernel reads the stored bytes).
    package let quantizedKernel: QuantKernel?
    /// Shares passes over the weights between the one-position steps of caches decoding at the
    /// same time (see `DecodeBatcher`; its `maxBatch` 1 turns batching off).
    package let decodeBatcher: DecodeBatcher
    /// The scratch buffers of the last prefill (passes of more than one position), kept for the
    /// next one: 170 KB per position at Vicuna-7B shapes (130 MB for the two passes of 762
    /// positions of a 1523-position prompt), which a fresh allocation hands out as untouched pages
    /// that the first layer then faults in, on every prompt (a cost of tens of milliseconds
    /// under a hypervisor, and a skew in any per-layer timing). One is kept per decoder, so the
    /// memory stays bounded by `batchSize`; evaluations running at the same time allocate their
    /// own.
    private let spareWorkspace = Mutex<DecoderWorkspace?>(nil)

    /// The embedding table `[vocab, hidden]` and the output head `[vocab, hidden]` (the same
    /// tensor when the embeddings are tied).
    package let embedTokens: LinearWeight
    package let lmHead: LinearWeight
    let finalNorm: [Float]
    let layers: [DecoderLayer]

    /// Checks `config` (`.badConfig` when its sizes are inconsistent) and every tensor of the
    /// decoder in `weights` (`.missingTensor` / `.tensorMismatch` naming the tensor;
    /// `.unsupported` for biases the architecture does not have). With `tie_word_embeddings`
    /// the output head is `model.embed_tokens`; otherwise `lm_head.weight` is required.
    /// Matrices `ModelQuantizer` stored quantized are used quantized. Loads OpenBLAS if needed
    /// (`.io` if it cannot).
    package convenience init(config: LanguageModelConfig, weights: WeightStore, batchSize: Int = 1024,
                            arithmetic: MatrixArithmetic = .float32, quantizedKernel: QuantKernel? = nil,
                            maxDecodeBatch: Int = DecodeBatcher.defaultMaxBatch) throws(LlavaError) {
        try self.init(config: config, source: SafetensorsDecoderSource(store: weights), batchSize: batchSize,
                      arithmetic: arithmetic, quantizedKernel: quantizedKernel, maxDecodeBatch: maxDecodeBatch)
    }

    /// The decoder of a LLaMA- or Qwen2-architecture GGUF file: hyper-parameters from its
    /// metadata (`LanguageModelConfig(gguf:)`), tensors under llama.cpp's names
    /// (`GGUFDecoderSource`), used in place from the mapping. The output head is `output.weight`,
    /// or `token_embd.weight` when the file has none (tied embeddings).
    package convenience init(gguf file: GGUFFile, batchSize: Int = 1024, arithmetic: MatrixArithmetic = .float32,
                            quantizedKernel: QuantKernel? = nil,
                            maxDecodeBatch: Int = DecodeBatcher.defaultMaxBatch) throws(LlavaError) {
        let config = try LanguageModelConfig(gguf: file)
        try self.init(config: config, source: GGUFDecoderSource(file: file, architecture: config.architecture),
                      batchSize: batchSize, arithmetic: arithmetic, quantizedKernel: quantizedKernel, maxDecodeBatch: maxDecodeBatch)
    }

    /// The decoder of a GGUF file with a given config (a model directory's, checked against the
    /// file's metadata by the caller).
    package convenience init(config: LanguageModelConfig, gguf file: GGUFFile, batchSize: Int = 1024,
                            arithmetic: MatrixArithmetic = .float32, quantizedKernel: QuantKernel? = nil,
                            maxDecodeBatch: Int = DecodeBatcher.defaultMaxBatch) throws(LlavaError) {
        try self.init(config: config, source: GGUFDecoderSource(file: file, architecture: config.architecture),
                      batchSize: batchSize, arithmetic: arithmetic, quantizedKernel: quantizedKernel, maxDecodeBatch: maxDecodeBatch)
    }

    init<Source: DecoderTensorSource>(config: LanguageModelConfig, source: Source, batchSize: Int,
         arithmetic: MatrixArithmetic, quantizedKernel: QuantKernel?, maxDecodeBatch: Int) throws(LlavaError) {
        try Self.validate(config)
        guard maxDecodeBatch >= 1 else {
            throw LlavaError(.invalidArgument, "decode batch size \(maxDecodeBatch) must be at least 1")
        }
        guard batchSize >= 1 else { throw LlavaError(.invalidArgument, "batch size \(batchSize) must be at least 1") }
        try BLAS.load()
        let h = config.hiddenSize, v = config.vocabSize
        self.config = config
        self.batchSize = batchSize
        self.arithmetic = arithmetic
        self.quantizedKernel = quantizedKernel
        decodeBatcher = DecodeBatcher(maxBatch: maxDecodeBatch)
        rope = try RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta)
        // Quantized matrices get their decode copies (interleaved, or in huge pages) here.
        let loading: any DecoderTensorSource = InterleavingDecoderSource<Source>.applies(to: quantizedKernel)
            ? InterleavingDecoderSource(base: source, threads: ComputeContext.defaultThreads) : source
        embedTokens = try loading.matrix(.embedTokens, layer: 0, shape: [v, h])
        lmHead = config.tieWordEmbeddings ? embedTokens : try loading.matrix(.outputHead, layer: 0, shape: [v, h])
        finalNorm = try source.vector(.finalNorm, layer: 0, count: h)
        var layers: [DecoderLayer] = []
        for i in 0..<config.layerCount {
            layers.append(try DecoderLayer(index: i, config: config, source: loading))
        }
        if source.contains(.inputNorm, layer: config.layerCount) {
            throw LlavaError(.tensorMismatch,
                             "\(source.description) have a layer \(config.layerCount) ('\(source.name(.inputNorm, layer: config.layerCount))') but the config says \(config.layerCount) layers")
        }
        self.layers = layers
    }

    static func validate(_ c: LanguageModelConfig) throws(LlavaError) {
        func bad(_ what: String) -> LlavaError { LlavaError(.badConfig, "language model config: \(what)") }
        for (name, value) in [("hidden_size", c.hiddenSize), ("intermediate_size", c.intermediateSize),
                              ("num_hidden_layers", c.layerCount), ("num_attention_heads", c.headCount),
                              ("num_key_value_heads", c.kvHeadCount), ("vocab_size", c.vocabSize),
                              ("max_position_embeddings", c.maxPositionEmbeddings)] where value <= 0 || value > Int32.max {
            throw bad("\(name) \(value) must be in 1...\(Int32.max)")
        }
        guard c.hiddenSize % c.headCount == 0 else {
            throw bad("hidden_size \(c.hiddenSize) is not divisible by num_attention_heads \(c.headCount)")
        }
        guard c.headDim % 2 == 0 else { throw bad("head width \(c.headDim) must be even for rotary embeddings") }
        guard c.headCount % c.kvHeadCount == 0 else {
            throw bad("num_key_value_heads \(c.kvHeadCount) does not divide num_attention_heads \(c.headCount)")
        }
        guard c.rmsNormEps > 0, c.rmsNormEps.isFinite else { throw bad("rms_norm_eps \(c.rmsNormEps) must be positive") }
        guard c.ropeTheta > 1, c.ropeTheta.isFinite else { throw bad("rope_theta \(c.ropeTheta) must be greater than 1") }
    }

    /// Which positions of an evaluated sequence get logits.
    package enum LogitsSelection: Sendable {
        /// None (for example a prompt prefix whose continuation follows).
        case none
        /// The last position: `[vocab]`.
        case last
        /// Every position: `[L × vocab]` row-major.
        case all
    }

    // MARK: Embeddings

    /// Row `id` of `model.embed_tokens` as float32 (`hidden` values). The slice separators of
    /// LLaVA-UHD are rows 13 and 29892. Throws `.invalidArgument` for an id outside the vocabulary.
    package func embeddingRow(_ id: Int) throws(LlavaError) -> [Float] {
        try embed(tokens: [id])
    }

    /// The embeddings of `tokens`, `[count × hidden]` row-major. Throws `.invalidArgument`
    /// naming the first id outside `0 ..< vocab`.
    package func embed(tokens: [Int]) throws(LlavaError) -> [Float] {
        let h = config.hiddenSize
        var out = [Float](repeating: 0, count: tokens.count * h)
        try out.withUnsafeMutableBufferPointer { (b) throws(LlavaError) in
            guard let base = b.baseAddress else { return }
            for (i, id) in tokens.enumerated() { try embed(token: id, into: base + i * h) }
        }
        return out
    }

    /// Writes the embedding of `token` (`hidden` floats) to `out`.
    package func embed(token id: Int, into out: UnsafeMutablePointer<Float>) throws(LlavaError) {
        guard id >= 0, id < config.vocabSize else {
            throw LlavaError(.invalidArgument, "token id \(id) is outside the vocabulary (0..<\(config.vocabSize))")
        }
        embedTokens.row(id, into: out)
    }

    // MARK: Evaluation

    /// Evaluates `tokens` after the positions already in `cache` (see `eval(embeddings:…)`).
    package func eval(tokens: [Int], cache: KVCache, logits: LogitsSelection = .last,
                     context: ComputeContext) throws(LlavaError) -> [Float] {
        try checkRoom(for: tokens.count, in: cache)
        let x = try embed(tokens: tokens)
        return try eval(embeddings: x, cache: cache, logits: logits, context: context)
    }

    /// Evaluates `embeddings` (`[L × hidden]` row-major) as positions `cache.count ..<
    /// cache.count + L`, stores their keys and values in `cache`, and returns the requested
    /// logits (float32; `[vocab]` for `.last`, `[L × vocab]` for `.all`, empty for `.none`).
    ///
    /// Throws `.invalidArgument` for an empty input, a length that is not a multiple of
    /// `hidden`, or a cache made for another model; `.contextFull` when the cache lacks room
    /// for L more positions (nothing is evaluated); `.cancelled` when the abort callback fires.
    /// On any error the cache keeps exactly the positions it had.
    package func eval(embeddings: [Float], cache: KVCache, logits: LogitsSelection = .last,
                     context: ComputeContext) throws(LlavaError) -> [Float] {
        let h = config.hiddenSize
        guard embeddings.count % h == 0 else {
            throw LlavaError(.invalidArgument, "embeddings hold \(embeddings.count) floats, not a multiple of hidden size \(h)")
        }
        return try embeddings.withUnsafeBufferPointer { (b) throws(LlavaError) -> [Float] in
            try eval(embeddings: b, cache: cache, logits: logits, context: context)
        }
    }

    /// As `eval(embeddings: [Float], …)`, reading from a buffer.
    package func eval(embeddings: UnsafeBufferPointer<Float>, cache: KVCache, logits: LogitsSelection = .last,
                     context: ComputeContext) throws(LlavaError) -> [Float] {
        let h = config.hiddenSize, vocab = config.vocabSize
        guard embeddings.count % h == 0 else {
            throw LlavaError(.invalidArgument, "embeddings hold \(embeddings.count) floats, not a multiple of hidden size \(h)")
        }
        let count = embeddings.count / h
        guard count > 0, let input = embeddings.baseAddress else {
            throw LlavaError(.invalidArgument, "nothing to evaluate: the input has no positions")
        }
        guard cache.layerCount == config.layerCount, cache.rowWidth == config.kvHeadCount * config.headDim else {
            throw LlavaError(.invalidArgument,
                             "the KV cache was made for \(cache.layerCount) layers × \(cache.rowWidth) floats, not this model's \(config.layerCount) × \(config.kvHeadCount * config.headDim)")
        }
        try checkRoom(for: count, in: cache)

        if count == 1, decodeBatcher.maxBatch > 1 {
            let request = DecodeBatcher.Request(embedding: Array(embeddings), cache: cache, wantsLogits: logits != .none,
                                                context: context)
            return try decodeBatcher.submit(request) { batch, isCancelled in
                decodeStep(batch, isCancelled: isCancelled, context: context)
            }
        }

        let start = cache.count
        let passes = (count + batchSize - 1) / batchSize
        let batch = (count + passes - 1) / passes
        let workspace = batch > 1 ? takeWorkspace(rows: batch) : DecoderWorkspace(rows: batch, config: config)
        defer { if batch > 1 { keepWorkspace(workspace) } }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * h)
        defer { x.deallocate() }
        var result: [Float]
        switch logits {
        case .none: result = []
        case .last: result = [Float](repeating: 0, count: vocab)
        case .all: result = [Float](repeating: 0, count: count * vocab)
        }

        var r0 = 0
        while r0 < count {
            let n = min(batch, count - r0)
            x.update(from: input + r0 * h, count: n * h)
            let (cos, sin) = rope.tables(positions: (start + r0)..<(start + r0 + n))
            let segments = [DecoderSegment(row: 0, rows: n, cache: cache, position: start + r0)]
            for layer in layers {
                try context.checkAbort("language model layer \(layer.index)")
                cos.withUnsafeBufferPointer { c in
                    sin.withUnsafeBufferPointer { s in
                        layer.forward(x, rows: n, segments: segments, rope: rope, cos: c.baseAddress!, sin: s.baseAddress!,
                                      config: config, arithmetic: arithmetic, kernel: quantizedKernel, rowwise: false,
                                      workspace: workspace, context: context)
                    }
                }
            }
            let isLast = r0 + n == count
            switch logits {
            case .none: break
            case .last where isLast:
                result.withUnsafeMutableBufferPointer { out in
                    head(x + (n - 1) * h, rows: 1, into: out.baseAddress!, workspace: workspace, context: context)
                }
            case .last: break
            case .all:
                result.withUnsafeMutableBufferPointer { out in
                    head(x, rows: n, into: out.baseAddress! + r0 * vocab, workspace: workspace, context: context)
                }
            }
            r0 += n
        }
        cache.commit(count: start + count)
        return result
    }

    /// The spare prefill workspace when it has room for `rows` positions, else a new one.
    private func takeWorkspace(rows: Int) -> DecoderWorkspace {
        let spare = spareWorkspace.withLock { spare -> DecoderWorkspace? in
            guard let w = spare, w.rows >= rows else { return nil }
            spare = nil
            return w
        }
        return spare ?? DecoderWorkspace(rows: rows, config: config)
    }

    /// Keeps `workspace` as the spare unless the spare is at least as large.
    private func keepWorkspace(_ workspace: DecoderWorkspace) {
        spareWorkspace.withLock { spare in
            if (spare?.rows ?? 0) < workspace.rows { spare = workspace }
        }
    }

    /// One decode pass for `batch` (one position each, every cache with room for it, checked by
    /// `eval`): the rows go through the layers together with `rowwise` products, so each gets the
    /// logits it would get alone. Before every layer the requests `isCancelled` names are dropped
    /// (result `.cancelled`, cache unchanged). Sets every request's result; commits the others'
    /// positions.
    private func decodeStep(_ batch: [DecodeBatcher.Request], isCancelled: (DecodeBatcher.Request) -> Bool,
                            context: ComputeContext) {
        let h = config.hiddenSize, vocab = config.vocabSize, half = config.headDim / 2
        var live = batch
        let workspace = DecoderWorkspace(rows: batch.count, config: config)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: batch.count * h)
        defer { x.deallocate() }
        var cos: [Float] = [], sin: [Float] = []
        for (i, r) in batch.enumerated() {
            r.embedding.withUnsafeBufferPointer { e in (x + i * h).update(from: e.baseAddress!, count: h) }
            let t = rope.tables(positions: r.cache.count..<(r.cache.count + 1))
            cos += t.cos
            sin += t.sin
        }
        for layer in layers {
            // Drop the cancelled requests, keeping the others' rows in order.
            var kept = 0
            for (i, r) in live.enumerated() {
                if isCancelled(r) {
                    r.result = .failure(DecodeBatcher.cancelled(layer: layer.index))
                    continue
                }
                if kept != i {
                    (x + kept * h).update(from: x + i * h, count: h)
                    for j in 0..<half {
                        cos[kept * half + j] = cos[i * half + j]
                        sin[kept * half + j] = sin[i * half + j]
                    }
                }
                live[kept] = r
                kept += 1
            }
            live.removeLast(live.count - kept)
            guard !live.isEmpty else { return }
            let segments = live.enumerated().map { i, r in DecoderSegment(row: i, rows: 1, cache: r.cache, position: r.cache.count) }
            cos.withUnsafeBufferPointer { c in
                sin.withUnsafeBufferPointer { s in
                    layer.forward(x, rows: live.count, segments: segments, rope: rope, cos: c.baseAddress!, sin: s.baseAddress!,
                                  config: config, arithmetic: arithmetic, kernel: quantizedKernel, rowwise: true,
                                  workspace: workspace, context: context)
                }
            }
        }
        let n = live.count
        var logits = [Float](repeating: 0, count: live.contains(where: \.wantsLogits) ? n * vocab : 0)
        if !logits.isEmpty {
            logits.withUnsafeMutableBufferPointer { out in
                head(x, rows: n, into: out.baseAddress!, rowwise: true, workspace: workspace, context: context)
            }
        }
        for (i, r) in live.enumerated() {
            r.cache.commit(count: r.cache.count + 1)
            r.result = .success(r.wantsLogits ? Array(logits[(i * vocab)..<((i + 1) * vocab)]) : [])
        }
    }

    /// Logits of `rows` final hidden states: `lm_head(rmsnorm(x))`.
    private func head(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, rowwise: Bool = false,
                      workspace: DecoderWorkspace, context: ComputeContext) {
        context.timed(DecoderStage.head) {
            Normalization.rmsNorm(x, rows: rows, cols: config.hiddenSize, gamma: finalNorm, eps: config.rmsNormEps,
                                  into: workspace.normed, threads: context.threads)
            MatMul.linear(workspace.normed, rows: rows, weight: lmHead, into: out, arithmetic: arithmetic,
                          kernel: quantizedKernel, rowwise: rowwise, context: context)
        }
    }

    private func checkRoom(for count: Int, in cache: KVCache) throws(LlavaError) {
        guard count <= cache.remaining else {
            throw LlavaError(.contextFull,
                             "the context holds \(cache.count) of \(cache.capacity) positions; \(count) more do not fit")
        }
    }

    /// How the decoder's matrices are stored: format name ("BF16", "Q8_0", "Q4_K", ...) → number
    /// of matrices, over the layers' projections and the output head.
    package var matrixFormats: [String: Int] {
        var out: [String: Int] = [lmHead.formatName: 1]
        for l in layers { for m in l.matrices { out[m.formatName, default: 0] += 1 } }
        return out
    }

    /// Bytes of weights one decoded token reads: every matrix of every layer and the output
    /// head (the embedding table is read one row per token and not counted).
    package var weightBytesPerToken: Int {
        layers.reduce(lmHead.byteCount) { sum, l in sum + l.matrices.reduce(0) { $0 + $1.byteCount } }
    }
}
