/// One pre-norm transformer block of a LLaMA/Qwen2 decoder, with its weights borrowed from
/// the mapping:
///
///     h = x + o_proj(attention(rope(q_proj(n₁)), rope(k_proj(n₁)), v_proj(n₁)))   n₁ = rmsnorm₁(x)
///     y = h + down_proj(silu(gate_proj(n₂)) ⊙ up_proj(n₂))                       n₂ = rmsnorm₂(h)
///
/// Qwen2 adds biases to q/k/v (not to o_proj); LLaMA has none. Tensor names are the Hugging
/// Face ones under `model.layers.N.`.
struct DecoderLayer: Sendable {
    let index: Int
    let inputNorm: [Float]
    let postAttentionNorm: [Float]
    let qProj, kProj, vProj, oProj: TensorView
    let qBias, kBias, vBias: [Float]?
    let gateProj, upProj, downProj: TensorView

    /// Looks up and checks every tensor of layer `index` (shape and float dtype).
    init(index: Int, config c: LanguageModelConfig, weights: WeightStore) throws(LlavaError) {
        let p = "model.layers.\(index)."
        let h = c.hiddenSize, qWidth = c.headCount * c.headDim, kvWidth = c.kvHeadCount * c.headDim
        let i = c.intermediateSize
        self.index = index
        inputNorm = try weights.tensor(p + "input_layernorm.weight", shape: [h]).floats()
        postAttentionNorm = try weights.tensor(p + "post_attention_layernorm.weight", shape: [h]).floats()
        qProj = try weights.tensor(p + "self_attn.q_proj.weight", shape: [qWidth, h])
        kProj = try weights.tensor(p + "self_attn.k_proj.weight", shape: [kvWidth, h])
        vProj = try weights.tensor(p + "self_attn.v_proj.weight", shape: [kvWidth, h])
        oProj = try weights.tensor(p + "self_attn.o_proj.weight", shape: [h, qWidth])
        gateProj = try weights.tensor(p + "mlp.gate_proj.weight", shape: [i, h])
        upProj = try weights.tensor(p + "mlp.up_proj.weight", shape: [i, h])
        downProj = try weights.tensor(p + "mlp.down_proj.weight", shape: [h, i])
        switch c.architecture {
        case .qwen2:
            qBias = try weights.tensor(p + "self_attn.q_proj.bias", shape: [qWidth]).floats()
            kBias = try weights.tensor(p + "self_attn.k_proj.bias", shape: [kvWidth]).floats()
            vBias = try weights.tensor(p + "self_attn.v_proj.bias", shape: [kvWidth]).floats()
        case .llama:
            for name in ["q_proj", "k_proj", "v_proj", "o_proj"] where weights.contains(p + "self_attn.\(name).bias") {
                throw LlavaError(.unsupported,
                                 "tensor '\(p)self_attn.\(name).bias' exists, but LLaMA attention has no biases (attention_bias true is not supported)")
            }
            qBias = nil
            kBias = nil
            vBias = nil
        }
        for name in ["self_attn.o_proj.bias", "mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias"]
        where weights.contains(p + name) {
            throw LlavaError(.unsupported, "tensor '\(p)\(name)' exists, but \(c.architecture.rawValue) has no bias there (mlp_bias is not supported)")
        }
    }

    /// Runs the block on `rows` hidden states `x` (`[rows × hidden]`, updated in place) at
    /// positions `position ..< position + rows`, writing their keys and values into `cache`
    /// (which must already hold positions `0 ..< position` for this layer).
    func forward(_ x: UnsafeMutablePointer<Float>, rows n: Int, position: Int, cache: KVCache,
                 rope: RotaryEmbedding, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                 config c: LanguageModelConfig, workspace ws: DecoderWorkspace, context: ComputeContext) {
        let h = c.hiddenSize, qWidth = c.headCount * c.headDim, kvWidth = cache.rowWidth
        let threads = context.threads
        let keys = cache.keys(layer: index), values = cache.values(layer: index)
        let newKeys = keys + position * kvWidth, newValues = values + position * kvWidth

        // Attention.
        Normalization.rmsNorm(x, rows: n, cols: h, gamma: inputNorm, eps: c.rmsNormEps, into: ws.normed, threads: threads)
        MatMul.linear(ws.normed, rows: n, weight: qProj, into: ws.queries, context: context)
        MatMul.linear(ws.normed, rows: n, weight: kProj, into: newKeys, context: context)
        MatMul.linear(ws.normed, rows: n, weight: vProj, into: newValues, context: context)
        if let qBias { Elementwise.addRowVector(qBias, to: ws.queries, rows: n, cols: qWidth, threads: threads) }
        if let kBias { Elementwise.addRowVector(kBias, to: newKeys, rows: n, cols: kvWidth, threads: threads) }
        if let vBias { Elementwise.addRowVector(vBias, to: newValues, rows: n, cols: kvWidth, threads: threads) }
        rope.apply(ws.queries, rows: n, heads: c.headCount, rowStride: qWidth, cos: cos, sin: sin, threads: threads)
        rope.apply(newKeys, rows: n, heads: c.kvHeadCount, rowStride: kvWidth, cos: cos, sin: sin, threads: threads)
        CausalAttention.compute(queries: ws.queries, rows: n, queryStride: qWidth, start: position,
                                keys: keys, values: values, kvStride: kvWidth,
                                heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                out: ws.attention, outStride: qWidth, context: context)
        MatMul.linear(ws.attention, rows: n, weight: oProj, into: ws.normed, context: context)
        Elementwise.add(ws.normed, to: x, count: n * h, threads: threads)

        // MLP.
        Normalization.rmsNorm(x, rows: n, cols: h, gamma: postAttentionNorm, eps: c.rmsNormEps, into: ws.normed, threads: threads)
        MatMul.linear(ws.normed, rows: n, weight: gateProj, into: ws.gate, context: context)
        MatMul.linear(ws.normed, rows: n, weight: upProj, into: ws.up, context: context)
        Elementwise.siluMultiply(ws.gate, by: ws.up, count: n * c.intermediateSize, threads: threads)
        MatMul.linear(ws.gate, rows: n, weight: downProj, into: ws.normed, context: context)
        Elementwise.add(ws.normed, to: x, count: n * h, threads: threads)
    }
}

/// Scratch buffers for up to `rows` positions of one forward pass.
final class DecoderWorkspace {
    let rows: Int
    let normed, queries, attention, gate, up: UnsafeMutablePointer<Float>
    private let storage: UnsafeMutablePointer<Float>

    init(rows: Int, config c: LanguageModelConfig) {
        self.rows = rows
        let h = c.hiddenSize, q = c.headCount * c.headDim, i = c.intermediateSize
        storage = .allocate(capacity: rows * (max(h, q) + 2 * q + 2 * i))
        normed = storage
        queries = normed + rows * max(h, q)
        attention = queries + rows * q
        gate = attention + rows * q
        up = gate + rows * i
    }

    deinit { storage.deallocate() }
}

/// The small element-wise steps between the matrix products, split over threads for long
/// inputs (each element is computed the same way whatever the split).
enum Elementwise {
    static let minimumPerTask = 1 << 15

    static func ranges(_ count: Int, threads: Int) -> [Range<Int>] {
        chunks(count, parts: min(threads * 4, max(1, count / minimumPerTask)))
    }

    /// y += x.
    static func add(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        let parts = ranges(count, threads: threads), out = SendablePointer(y)
        parallelFor(parts.count, threads: threads) { p in
            for i in parts[p] { out.p[i] += x[i] }
        }
    }

    /// Adds `v` (`cols` floats) to every row of `m` (`[rows × cols]`).
    static func addRowVector(_ v: [Float], to m: UnsafeMutablePointer<Float>, rows: Int, cols: Int, threads: Int) {
        let parts = chunks(rows, parts: rows * cols >= minimumPerTask ? threads : 1), out = SendablePointer(m)
        v.withUnsafeBufferPointer { b in
            guard let bias = b.baseAddress else { return }
            parallelFor(parts.count, threads: threads) { p in
                for r in parts[p] {
                    let row = out.p + r * cols
                    for j in 0..<cols { row[j] += bias[j] }
                }
            }
        }
    }

    /// gate = silu(gate) · up (the gated MLP's activation, as `act_fn(gate_proj(x)) * up_proj(x)`).
    static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, by up: UnsafePointer<Float>, count: Int, threads: Int) {
        let parts = ranges(count, threads: threads), g = SendablePointer(gate)
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p]
            Activation.silu(g.p + r.lowerBound, count: r.count)
            for i in r { g.p[i] *= up[i] }
        }
    }
}
