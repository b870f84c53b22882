/// One pre-norm transformer block of a LLaMA/Qwen2 decoder, with its weights borrowed from
/// the mapping:
///
///     h = x + o_proj(attention(rope(q_proj(n₁)), rope(k_proj(n₁)), v_proj(n₁)))   n₁ = rmsnorm₁(x)
///     y = h + down_proj(silu(gate_proj(n₂)) ⊙ up_proj(n₂))                       n₂ = rmsnorm₂(h)
///
/// Qwen2 adds biases to q/k/v (not to o_proj); LLaMA has none. The projections are dense or
/// quantized (`LinearWeight`), as their source stores them.
struct DecoderLayer: Sendable {
    let index: Int
    let inputNorm: [Float]
    let postAttentionNorm: [Float]
    let qProj, kProj, vProj, oProj: LinearWeight
    let qBias, kBias, vBias: [Float]?
    let gateProj, upProj, downProj: LinearWeight
    /// The q/k rows are in GGML's interleaved rotary order (see `GGUFDecoderSource`): the
    /// projections' outputs are put back in Hugging Face order before the rotation.
    let interleavedRotaryRows: Bool

    /// Looks up and checks every tensor of layer `index` (shape and storage type).
    init(index: Int, config c: LanguageModelConfig, source: some DecoderTensorSource) throws(LlavaError) {
        let h = c.hiddenSize, qWidth = c.headCount * c.headDim, kvWidth = c.kvHeadCount * c.headDim
        let i = c.intermediateSize
        self.index = index
        inputNorm = try source.vector(.inputNorm, layer: index, count: h)
        postAttentionNorm = try source.vector(.postAttentionNorm, layer: index, count: h)
        qProj = try source.matrix(.query, layer: index, shape: [qWidth, h])
        kProj = try source.matrix(.key, layer: index, shape: [kvWidth, h])
        vProj = try source.matrix(.value, layer: index, shape: [kvWidth, h])
        oProj = try source.matrix(.output, layer: index, shape: [h, qWidth])
        gateProj = try source.matrix(.gate, layer: index, shape: [i, h])
        upProj = try source.matrix(.up, layer: index, shape: [i, h])
        downProj = try source.matrix(.down, layer: index, shape: [h, i])
        interleavedRotaryRows = source.interleavedRotaryRows
        switch c.architecture {
        case .qwen2:
            qBias = try source.vector(.queryBias, layer: index, count: qWidth)
            kBias = try source.vector(.keyBias, layer: index, count: kvWidth)
            vBias = try source.vector(.valueBias, layer: index, count: kvWidth)
        case .llama:
            for t in [DecoderTensor.queryBias, .keyBias, .valueBias, .outputBias] where source.contains(t, layer: index) {
                throw LlavaError(.unsupported,
                                 "tensor '\(source.name(t, layer: index))' exists, but LLaMA attention has no biases (attention_bias true is not supported)")
            }
            qBias = nil
            kBias = nil
            vBias = nil
        }
        for t in [DecoderTensor.outputBias, .gateBias, .upBias, .downBias] where source.contains(t, layer: index) {
            throw LlavaError(.unsupported, "tensor '\(source.name(t, layer: index))' exists, but \(c.architecture.rawValue) has no bias there (mlp_bias is not supported)")
        }
    }

    /// The matrices, in the order a forward pass reads them.
    var matrices: [LinearWeight] { [qProj, kProj, vProj, oProj, gateProj, upProj, downProj] }

    /// Runs the block on `rows` hidden states `x` (`[rows × hidden]`, updated in place) that
    /// belong to one or more sequences (`segments`, in row order, covering the rows): segment s
    /// holds rows `s.row ..< s.row + s.rows` at positions `s.position ..< s.position + s.rows` of
    /// its own cache, which must already hold positions `0 ..< s.position` for this layer; their
    /// keys and values are written there. Row r of `cos`/`sin` is its position's rotary table.
    ///
    /// Prefill is one segment of many rows; a batched decode step (`DecodeBatcher`) is one row per
    /// sequence with `rowwise` products, so each row's result is the one it gets alone.
    func forward(_ x: UnsafeMutablePointer<Float>, rows n: Int, segments: [DecoderSegment],
                 rope: RotaryEmbedding, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                 config c: LanguageModelConfig, arithmetic: MatrixArithmetic, kernel: QuantKernel?, rowwise: Bool,
                 workspace ws: DecoderWorkspace, context: ComputeContext) {
        let h = c.hiddenSize, qWidth = c.headCount * c.headDim, kvWidth = c.kvHeadCount * c.headDim
        let threads = context.threads
        // A lone float32 cache receives the new keys and values in place; otherwise they are
        // stored once complete (rotated), rounded once for a 16-bit cache.
        let inPlace = segments.count == 1 && segments[0].cache.type == .float32
        let newKeys = inPlace ? segments[0].cache.keys(layer: index).floats + segments[0].position * kvWidth : ws.keys
        let newValues = inPlace ? segments[0].cache.values(layer: index).floats + segments[0].position * kvWidth : ws.values
        func linear(_ input: UnsafePointer<Float>, _ w: LinearWeight, _ out: UnsafeMutablePointer<Float>) {
            MatMul.linear(input, rows: n, weight: w, into: out, arithmetic: arithmetic, kernel: kernel, rowwise: rowwise,
                          context: context)
        }
        /// Products of one input: x quantized once for those that run the int8 product.
        func linear(_ input: UnsafePointer<Float>, _ products: [(weight: LinearWeight, out: UnsafeMutablePointer<Float>)]) {
            MatMul.linear(input, rows: n, weights: products, arithmetic: arithmetic, kernel: kernel, rowwise: rowwise,
                          context: context)
        }

        // Attention. Each step is timed into `context.stageClock` when a benchmark gives one.
        context.timed(DecoderStage.norm) {
            Normalization.rmsNorm(x, rows: n, cols: h, gamma: inputNorm, eps: c.rmsNormEps, into: ws.normed, threads: threads)
        }
        context.timed(DecoderStage.qkv) { linear(ws.normed, [(qProj, ws.queries), (kProj, newKeys), (vProj, newValues)]) }
        context.timed(DecoderStage.rotary) {
            if let qBias { Elementwise.addRowVector(qBias, to: ws.queries, rows: n, cols: qWidth, threads: threads) }
            if let kBias { Elementwise.addRowVector(kBias, to: newKeys, rows: n, cols: kvWidth, threads: threads) }
            if let vBias { Elementwise.addRowVector(vBias, to: newValues, rows: n, cols: kvWidth, threads: threads) }
            if interleavedRotaryRows {
                Elementwise.deinterleaveHeads(ws.queries, rows: n, rowStride: qWidth, heads: c.headCount, headDim: c.headDim)
                Elementwise.deinterleaveHeads(newKeys, rows: n, rowStride: kvWidth, heads: c.kvHeadCount, headDim: c.headDim)
            }
            rope.apply(ws.queries, rows: n, heads: c.headCount, rowStride: qWidth, cos: cos, sin: sin, threads: threads)
            rope.apply(newKeys, rows: n, heads: c.kvHeadCount, rowStride: kvWidth, cos: cos, sin: sin, threads: threads)
            if !inPlace {
                for s in segments {
                    s.cache.keys(layer: index).store(newKeys + s.row * kvWidth, rows: s.rows, at: s.position, threads: threads)
                    s.cache.values(layer: index).store(newValues + s.row * kvWidth, rows: s.rows, at: s.position, threads: threads)
                }
            }
        }
        context.timed(DecoderStage.attention) {
            for s in segments {
                CausalAttention.compute(queries: ws.queries + s.row * qWidth, rows: s.rows, queryStride: qWidth, start: s.position,
                                        keys: s.cache.keys(layer: index), values: s.cache.values(layer: index),
                                        heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                        out: ws.attention + s.row * qWidth, outStride: qWidth, context: context)
            }
        }
        context.timed(DecoderStage.output) { linear(ws.attention, oProj, ws.normed) }
        context.timed(DecoderStage.residual) { Elementwise.add(ws.normed, to: x, count: n * h, threads: threads) }

        // MLP.
        context.timed(DecoderStage.norm) {
            Normalization.rmsNorm(x, rows: n, cols: h, gamma: postAttentionNorm, eps: c.rmsNormEps, into: ws.normed, threads: threads)
        }
        context.timed(DecoderStage.gateUp) { linear(ws.normed, [(gateProj, ws.gate), (upProj, ws.up)]) }
        context.timed(DecoderStage.activation) {
            Activation.siluMultiply(ws.gate, by: ws.up, count: n * c.intermediateSize, threads: threads)
        }
        context.timed(DecoderStage.down) { linear(ws.gate, downProj, ws.normed) }
        context.timed(DecoderStage.residual) { Elementwise.add(ws.normed, to: x, count: n * h, threads: threads) }
    }
}

/// Names of the steps of a decoder forward pass that `DecoderLayer.forward` and the output head
/// time into `ComputeContext.stageClock` (benchmarks).
package enum DecoderStage {
    package static let norm = "RMSNorm", qkv = "q/k/v products", rotary = "rotary + KV store",
                       attention = "attention", output = "o_proj product", residual = "residual adds",
                       gateUp = "gate/up products", activation = "SiLU·mul", down = "down_proj product",
                       head = "final norm + lm_head"
    /// The steps inside a decoder layer (all but `head`): their sum is the time inside the layers.
    package static let insideLayers: Set = [norm, qkv, rotary, attention, output, residual, gateUp, activation, down]
}

/// The rows of one sequence in a forward pass: rows `row ..< row + rows` of the pass are
/// positions `position ..< position + rows` of `cache`.
struct DecoderSegment {
    let row: Int
    let rows: Int
    let cache: KVCache
    let position: Int
}

/// Scratch buffers for up to `rows` positions of one forward pass. `keys` and `values`
/// (`[rows × kvHeads·headDim]`) hold the new positions' keys and values before a 16-bit cache
/// stores them. Used by one forward pass at a time (`TransformerDecoder` hands a kept one to
/// the next prefill under its lock).
final class DecoderWorkspace: @unchecked Sendable {
    let rows: Int
    let normed, queries, attention, gate, up, keys, values: UnsafeMutablePointer<Float>
    private let storage: UnsafeMutablePointer<Float>

    init(rows: Int, config c: LanguageModelConfig) {
        self.rows = rows
        let h = c.hiddenSize, q = c.headCount * c.headDim, i = c.intermediateSize, kv = c.kvHeadCount * c.headDim
        storage = .allocate(capacity: rows * (max(h, q) + 2 * q + 2 * i + 2 * kv))
        normed = storage
        queries = normed + rows * max(h, q)
        attention = queries + rows * q
        gate = attention + rows * q
        up = gate + rows * i
        keys = up + rows * i
        values = keys + rows * kv
    }

    deinit { storage.deallocate() }
}
