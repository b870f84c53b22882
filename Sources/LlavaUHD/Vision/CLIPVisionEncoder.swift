/// The CLIP vision transformer of LLaVA-UHD (docs/MODEL.md §2: upstream `AdaptCLIPVisionTransformer`
/// over HF `CLIPEncoder`), run on each view at its native patch grid.
///
/// Per view of h×w patches (H = 14h, W = 14w pixels):
/// 1. patch embedding: a 14×14 stride-14 convolution without bias, computed as a GEMM of the
///    unfolded patches `[h·w, 3·14·14]` (channel, row, column order) with the weight
///    `[C, 3·14·14]`; the class embedding is prepended;
/// 2. position embeddings: the stored `1 + 24²` table when (h, w) = (24, 24); otherwise the
///    24×24 patch part resized to h×w with torch's bicubic (align_corners=False), the CLS
///    position kept;
/// 3. `pre_layrnorm`, then encoder layers: x += out(MHA(LN1(x))), x += fc2(quickGELU(fc1(LN2(x))))
///    with q/k/v/out biases, heads of C/heads channels, scores scaled by 1/√head_dim;
/// 4. the output is the hidden state after `layersUsed` layers (`hidden_states[selectLayer]`;
///    −2 = the input of the last layer, which is therefore never computed), CLS dropped.
///
/// All views are batched through every per-token operation (one GEMM per weight per layer
/// over the tokens of all views); attention runs per view and head: on CPUs whose best vector
/// kernels are AVX2, in the fused kernel `FullAttention` (scores, softmax and values per group of
/// query rows in cache), elsewhere as two `BLAS.sgemm` calls around a row softmax. Weights stay in the
/// memory mapping: F32 weights are used in place, F16/BF16 matrices are widened to F32 once
/// per layer per call into a reused scratch buffer (never kept). Biases and norm weights are
/// converted once at init. GEMMs go through `BLAS.sgemm` with the context's threads (the
/// weight products in whole-row blocks, `BLAS.wholeRowBlockShape`); the other loops use
/// `context.threads`. Results do not depend on the thread count.
///
/// With `arithmetic == .bfloat16` on a CPU with AVX512_BF16, the q/k/v, out, fc1 and fc2
/// products against BF16 weights use `BF16Product` instead (activations rounded to bf16, the
/// weights read in place, float32 sums). With `arithmetic == .int8`, init makes a Q8_0 copy of
/// those weights (`Int8Product`: about 310 MB for ViT-L/14-336, on top of the mapped weights)
/// and they run in the int8 matrix product of quantized prefill (AVX-512 VNNI, else AVX2:
/// `Int8ProductKernel`; `quantKernel` can force the f32 fallback). Either way the patch embedding and attention (scores, softmax,
/// mixing) stay float32.
package final class CLIPVisionEncoder: @unchecked Sendable {
    package let config: CLIPVisionConfig
    /// Encoder layers run per call (`layerCount + selectLayer + 1` for a negative selectLayer).
    package let layersUsed: Int
    /// How the per-token projections multiply activations with the weights.
    package let arithmetic: MatrixArithmetic
    /// The kernel of the `.int8` products (nil: the CPU's int8 product, `Int8ProductKernel`);
    /// tests force `.f32AVX2` to run the fallback.
    package let quantKernel: QuantKernel?

    /// Q8_0 copies of one layer's projection weights (`MatrixArithmetic.int8`).
    struct Int8Weights {
        /// q, k, v stacked `[3C, C]`.
        let qkv: QuantizedMatrix
        let out: QuantizedMatrix
        let fc1: QuantizedMatrix
        let fc2: QuantizedMatrix

        var byteCount: Int { qkv.byteCount + out.byteCount + fc1.byteCount + fc2.byteCount }
    }

    struct Layer {
        let norm1Weight: [Float], norm1Bias: [Float]
        let norm2Weight: [Float], norm2Bias: [Float]
        /// q, k, v projections `[C, C]` each; their biases concatenated `[3C]`.
        let qkv: [TensorView]
        let qkvBias: [Float]
        let out: TensorView
        let outBias: [Float]
        let fc1: TensorView
        let fc1Bias: [Float]
        let fc2: TensorView
        let fc2Bias: [Float]
        /// With `.int8`: the Q8_0 copies; nil otherwise, or when a copy could not be made (row
        /// length not a multiple of 32, no memory), and that layer's products run float32.
        let int8: Int8Weights?
    }

    let classEmbedding: [Float]
    /// `[C, 3, p, p]`, used as `[C, 3·p·p]`.
    let patchWeight: TensorView
    /// `[1 + g², C]`.
    let positionTable: TensorView
    let preNormWeight: [Float], preNormBias: [Float]
    let layers: [Layer]

    /// Rows of the MLP processed at once (bounds the `[rows, intermediate]` buffer).
    static let mlpRowBlock = 1024
    /// Largest token count of one view (its attention scores take tokens² floats).
    package static let maxTokensPerView = 16384

    /// Binds the tower's tensors under `prefix` (upstream:
    /// `model.vision_tower.vision_tower.vision_model.`; HF CLIPVisionModel: `vision_model.`) and
    /// checks every shape and dtype against `config`. Throws `.badConfig` for an inconsistent
    /// config, `.missingTensor` / `.tensorMismatch` naming the tensor. `threads` quantize the
    /// `.int8` copies.
    package init(store: WeightStore, prefix: String, config: CLIPVisionConfig,
                arithmetic: MatrixArithmetic = .float32, quantKernel: QuantKernel? = nil,
                threads: Int = 1) throws(LlavaError) {
        let c = config.hiddenSize, i = config.intermediateSize, p = config.patchSize
        guard c >= 1, i >= 1, config.headCount >= 1, c % config.headCount == 0 else {
            throw LlavaError(.badConfig, "CLIP width \(c) is not divisible into \(config.headCount) heads")
        }
        guard p >= 1, config.imageSize >= p, config.imageSize % p == 0 else {
            throw LlavaError(.badConfig, "CLIP image size \(config.imageSize) is not a multiple of the patch size \(p)")
        }
        guard config.layerNormEps > 0, config.layerNormEps.isFinite else {
            throw LlavaError(.badConfig, "CLIP LayerNorm epsilon \(config.layerNormEps) must be positive")
        }
        let used = config.selectLayer < 0 ? config.layerCount + 1 + config.selectLayer : config.selectLayer
        guard config.layerCount >= 1, used >= 0, used <= config.layerCount else {
            throw LlavaError(.badConfig,
                             "CLIP select layer \(config.selectLayer) does not exist in a \(config.layerCount)-layer tower")
        }
        self.config = config
        self.layersUsed = used
        self.arithmetic = arithmetic
        self.quantKernel = quantKernel

        func t(_ name: String, _ shape: [Int]) throws(LlavaError) -> TensorView {
            try store.tensor(prefix + name, shape: shape)
        }
        func v(_ name: String, _ count: Int) throws(LlavaError) -> [Float] {
            try store.tensor(prefix + name, shape: [count]).floats()
        }
        let g = config.gridSide
        classEmbedding = try v("embeddings.class_embedding", c)
        patchWeight = try t("embeddings.patch_embedding.weight", [c, 3, p, p])
        positionTable = try t("embeddings.position_embedding.weight", [1 + g * g, c])
        preNormWeight = try v("pre_layrnorm.weight", c)
        preNormBias = try v("pre_layrnorm.bias", c)
        var layers: [Layer] = []
        for l in 0..<used {
            let n = "encoder.layers.\(l)."
            let qkv = [try t(n + "self_attn.q_proj.weight", [c, c]), try t(n + "self_attn.k_proj.weight", [c, c]),
                       try t(n + "self_attn.v_proj.weight", [c, c])]
            let qkvBias = try v(n + "self_attn.q_proj.bias", c) + v(n + "self_attn.k_proj.bias", c)
                + v(n + "self_attn.v_proj.bias", c)
            let out = try t(n + "self_attn.out_proj.weight", [c, c])
            let fc1 = try t(n + "mlp.fc1.weight", [i, c]), fc2 = try t(n + "mlp.fc2.weight", [c, i])
            var int8: Int8Weights?
            if arithmetic == .int8, let q = Int8Product.quantize(qkv, threads: threads),
               let o = Int8Product.quantize([out], threads: threads), let f1 = Int8Product.quantize([fc1], threads: threads),
               let f2 = Int8Product.quantize([fc2], threads: threads) {
                int8 = Int8Weights(qkv: q, out: o, fc1: f1, fc2: f2)
            }
            layers.append(Layer(
                norm1Weight: try v(n + "layer_norm1.weight", c), norm1Bias: try v(n + "layer_norm1.bias", c),
                norm2Weight: try v(n + "layer_norm2.weight", c), norm2Bias: try v(n + "layer_norm2.bias", c),
                qkv: qkv, qkvBias: qkvBias,
                out: out, outBias: try v(n + "self_attn.out_proj.bias", c),
                fc1: fc1, fc1Bias: try v(n + "mlp.fc1.bias", i),
                fc2: fc2, fc2Bias: try v(n + "mlp.fc2.bias", c), int8: int8))
        }
        self.layers = layers
    }

    /// Bytes of the `.int8` Q8_0 copies (0 for the other arithmetics).
    package var int8CopyBytes: Int { layers.reduce(0) { $0 + ($1.int8?.byteCount ?? 0) } }

    /// Encodes views (each `3 × 14h × 14w`, any sizes) and returns their patch features in the
    /// same order. Throws `.invalidArgument` for a view whose sides are not positive multiples
    /// of the patch size, `.imageTooLarge` for a view above `maxTokensPerView` tokens,
    /// `.cancelled` when `context` asks to stop (polled between layers). Needs OpenBLAS
    /// (`.io` when it cannot be loaded).
    package func encode(_ views: [PixelTensor], context: ComputeContext) throws(LlavaError) -> [PatchFeatures] {
        guard !views.isEmpty else { return [] }
        try BLAS.load()
        let p = config.patchSize, c = config.hiddenSize
        var grids: [(rows: Int, columns: Int)] = []
        for (index, view) in views.enumerated() {
            guard view.width >= p, view.height >= p, view.width % p == 0, view.height % p == 0,
                  view.values.count == 3 * view.width * view.height else {
                throw LlavaError(.invalidArgument, "view \(index) is \(view.width)x\(view.height), not a multiple of the \(p)-pixel patch")
            }
            guard view.width / p * (view.height / p) + 1 <= Self.maxTokensPerView else {
                throw LlavaError(.imageTooLarge, "view \(index) (\(view.width)x\(view.height)) has more than \(Self.maxTokensPerView) tokens")
            }
            grids.append((view.height / p, view.width / p))
        }
        // Row offset of each view's CLS token in the stacked token matrix.
        var offsets: [Int] = []
        var total = 0
        for g in grids {
            offsets.append(total)
            total += g.rows * g.columns + 1
        }

        let shape = EncoderBuffers.Shape(config: config, tokens: total,
                                         maxViewTokens: grids.map { $0.rows * $0.columns + 1 }.max() ?? 1,
                                         attentionTasks: grids.count * config.headCount, threads: context.threads)
        let state = context.visionScratch?.takeEncoderBuffers(fitting: shape) ?? EncoderBuffers(shape)
        state.tokens = total
        defer { context.visionScratch?.keep(state) }

        let patches = grids.reduce(0) { $0 + $1.rows * $1.columns }
        try context.timed("ViT patch embedding", operations: 2.0 * Double(patches * c * 3 * p * p)) { () throws(LlavaError) in
            try embed(views, grids: grids, offsets: offsets, into: state, context: context)
        }
        Normalization.layerNorm(state.hidden, rows: total, cols: c, gamma: preNormWeight, beta: preNormBias,
                                eps: config.layerNormEps, into: state.hidden, threads: context.threads)
        for (l, layer) in layers.enumerated() {
            try context.checkAbort("CLIP encoder layer \(l)")
            run(layer, grids: grids, offsets: offsets, state: state, context: context)
        }
        try context.checkAbort("CLIP encoder")

        return grids.indices.map { v in
            let n = grids[v].rows * grids[v].columns
            let start = state.hidden + (offsets[v] + 1) * c
            let values = [Float](UnsafeBufferPointer(start: start, count: n * c))
            return PatchFeatures(checkedRows: grids[v].rows, columns: grids[v].columns, channels: c, values: values)
        }
    }

    /// Patch embedding + class embedding + (resized) position embeddings into `state.hidden`.
    func embed(_ views: [PixelTensor], grids: [(rows: Int, columns: Int)], offsets: [Int],
               into state: EncoderBuffers, context: ComputeContext) throws(LlavaError) {
        let p = config.patchSize, c = config.hiddenSize, k = 3 * p * p, g = config.gridSide
        let weight = state.weightF32(patchWeight, slot: 0, threads: context.threads)
        let table = positionTable.floats()
        var resized: [Int: [Float]] = [:]
        for (v, view) in views.enumerated() {
            let (h, w) = grids[v]
            let n = h * w
            // Unfold: patch (py, px) → row py·w + px, entries in (channel, ky, kx) order.
            let patches = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
            defer { patches.deallocate() }
            let dst = SendablePointer(patches)
            view.values.withUnsafeBufferPointer { src in
                let plane = view.width * view.height, width = view.width
                parallelFor(h, threads: context.threads) { py in
                    for px in 0..<w {
                        var o = dst.p + (py * w + px) * k
                        for ch in 0..<3 {
                            for ky in 0..<p {
                                let row = src.baseAddress! + ch * plane + (py * p + ky) * width + px * p
                                o.update(from: row, count: p)
                                o += p
                            }
                        }
                    }
                }
            }
            let cls = state.hidden + offsets[v] * c
            BLAS.sgemm(transB: true, m: n, n: c, k: k, a: patches, lda: k, b: weight, ldb: k, c: cls + c, ldc: c, threads: context.threads)
            for j in 0..<c { cls[j] = classEmbedding[j] + table[j] }
            let positions: [Float]
            if h == g && w == g {
                positions = Array(table[c...])
            } else if let cached = resized[h << 32 | w] {
                positions = cached
            } else {
                var out = [Float](repeating: 0, count: n * c)
                table.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { o in
                        TorchResample.bicubic(src.baseAddress! + c, layout: .hwc, channels: c, height: g, width: g,
                                              outHeight: h, outWidth: w, into: o.baseAddress!)
                    }
                }
                resized[h << 32 | w] = out
                positions = out
            }
            let rows = SendablePointer(cls + c)
            positions.withUnsafeBufferPointer { pos in
                let parts = chunks(n, parts: context.threads)
                parallelFor(parts.count, threads: context.threads) { part in
                    for i in parts[part].lowerBound * c..<parts[part].upperBound * c { rows.p[i] += pos[i] }
                }
            }
        }
    }

    /// One encoder layer over all tokens, in place on `state.hidden`.
    func run(_ layer: Layer, grids: [(rows: Int, columns: Int)], offsets: [Int], state: EncoderBuffers,
             context: ComputeContext) {
        let c = config.hiddenSize, inter = config.intermediateSize, total = state.tokens
        let heads = config.headCount, d = c / heads
        let threads = context.threads
        let eps = config.layerNormEps

        // Attention block.
        Normalization.layerNorm(state.hidden, rows: total, cols: c, gamma: layer.norm1Weight, beta: layer.norm1Bias,
                                eps: eps, into: state.normed, threads: threads)
        context.timed("ViT q/k/v", operations: 2.0 * Double(total * c * 3 * c)) {
            state.linear(state.normed, rows: total, weights: layer.qkv, slot: 0, bias: layer.qkvBias,
                         into: state.qkv, bfloat16: usesBF16(layer.qkv), int8: layer.int8?.qkv, kernel: quantKernel,
                         context: context)
        }
        let scale = 1 / Float(d).squareRoot()
        let ld = 3 * c
        // One task per (view, head). With the fused kernel (`FullAttention`, AVX2 CPUs) a head
        // runs on one thread in its lane's work buffer, and the heads run side by side. Without
        // it, a head's two products are too small for `BLAS.sgemm` to split (one block below 1536
        // tokens), so with several score buffers the heads run side by side, each with the calls
        // it makes alone (nested loops run inline); with one buffer, each product and the softmax
        // use the threads. Either way results do not depend on the thread count.
        let lanes = chunks(grids.count * heads, parts: state.scores.count)
        let qkv = SendablePointer(state.qkv), attended = SendablePointer(state.normed)
        let attentionOperations = grids.reduce(0.0) { $0 + 4.0 * Double(($1.rows * $1.columns + 1) * ($1.rows * $1.columns + 1) * c) }
        context.timed("ViT attention (scores, softmax, mixing)", operations: attentionOperations) {
            parallelFor(lanes.count, threads: threads) { lane in
                let scores = SendablePointer(state.scores[lane])
                for task in lanes[lane] {
                    let v = task / heads, h = task % heads
                    let n = grids[v].rows * grids[v].columns + 1
                    let base = qkv.p + offsets[v] * ld
                    if state.capacity.fusedAttention {
                        FullAttention.run(q: base + h * d, k: base + c + h * d, v: base + 2 * c + h * d, stride: ld,
                                          tokens: n, headDim: d, scale: scale, out: attended.p + offsets[v] * c + h * d,
                                          outStride: c, work: UnsafeMutableRawPointer(scores.p))
                        continue
                    }
                    BLAS.sgemm(transB: true, m: n, n: n, k: d, alpha: scale, a: base + h * d, lda: ld,
                               b: base + c + h * d, ldb: ld, c: scores.p, ldc: n, threads: threads)
                    let parts = chunks(n, parts: n >= 64 ? threads : 1)
                    parallelFor(parts.count, threads: threads) { part in
                        let r = parts[part]
                        Activation.softmaxRows(scores.p + r.lowerBound * n, rows: r.count, cols: n)
                    }
                    BLAS.sgemm(m: n, n: d, k: n, a: scores.p, lda: n, b: base + 2 * c + h * d, ldb: ld,
                               c: attended.p + offsets[v] * c + h * d, ldc: c, threads: threads)
                }
            }
        }
        context.timed("ViT out_proj", operations: 2.0 * Double(total * c * c)) {
            state.linear(state.normed, rows: total, weights: [layer.out], slot: 1, bias: nil, into: state.qkv,
                         bfloat16: usesBF16([layer.out]), int8: layer.int8?.out, kernel: quantKernel, context: context)
        }
        state.addResidual(state.qkv, bias: layer.outBias, rows: total, threads: threads)

        // MLP block, in row blocks.
        Normalization.layerNorm(state.hidden, rows: total, cols: c, gamma: layer.norm2Weight, beta: layer.norm2Bias,
                                eps: eps, into: state.normed, threads: threads)
        let int8 = layer.int8
        let bf16 = int8 == nil && usesBF16([layer.fc1, layer.fc2])
        let fc1 = bf16 || int8 != nil ? nil : state.weightF32(layer.fc1, slot: 0, threads: threads)
        let fc2 = bf16 || int8 != nil ? nil : state.weightF32(layer.fc2, slot: 1, threads: threads)
        context.timed("ViT MLP (fc1, quickGELU, fc2)", operations: 4.0 * Double(total * c * inter)) {
            var r0 = 0
            while r0 < total {
                let m = min(Self.mlpRowBlock, total - r0)
                if let int8 {
                    MatMul.linear(state.normed + r0 * c, rows: m, weight: int8.fc1, into: state.mlp, ldOut: inter,
                                  context: context, kernel: quantKernel)
                } else if let fc1 {
                    BLAS.sgemm(transB: true, m: m, n: inter, k: c, a: state.normed + r0 * c, lda: c, b: fc1, ldb: c,
                               c: state.mlp, ldc: inter, threads: threads, wholeRows: true)
                } else {
                    BF16Product.linear(state.normed + r0 * c, rows: m, weight: layer.fc1, into: state.mlp, ldOut: inter,
                                       threads: threads)
                }
                let act = SendablePointer(state.mlp)
                let parts = chunks(m, parts: threads)
                layer.fc1Bias.withUnsafeBufferPointer { bias in
                    parallelFor(parts.count, threads: threads) { part in
                        for r in parts[part] {
                            let row = act.p + r * inter
                            for j in 0..<inter { row[j] += bias[j] }
                            Activation.quickGelu(row, count: inter)
                        }
                    }
                }
                if let int8 {
                    MatMul.linear(state.mlp, rows: m, weight: int8.fc2, into: state.qkv + r0 * c, ldOut: c,
                                  context: context, kernel: quantKernel)
                } else if let fc2 {
                    BLAS.sgemm(transB: true, m: m, n: c, k: inter, a: state.mlp, lda: inter, b: fc2, ldb: inter,
                               c: state.qkv + r0 * c, ldc: c, threads: threads, wholeRows: true)
                } else {
                    BF16Product.linear(state.mlp, rows: m, weight: layer.fc2, into: state.qkv + r0 * c, ldOut: c,
                                       threads: threads)
                }
                r0 += m
            }
        }
        state.addResidual(state.qkv, bias: layer.fc2Bias, rows: total, threads: threads)
    }
}

extension CLIPVisionEncoder {
    /// True when the products against `weights` run in bf16: `.bfloat16` asked for, the CPU has
    /// AVX512_BF16, and every weight is a BF16 matrix with an even row length.
    func usesBF16(_ weights: [TensorView]) -> Bool {
        arithmetic == .bfloat16 && BF16Product.isAvailable
            && weights.allSatisfy { $0.dtype == .bf16 && $0.shape.count == 2 && $0.shape[1] % 2 == 0 }
    }
}

/// The working memory of a `CLIPVisionEncoder` call: made for the call's `Shape`, or one kept
/// by the caller's `VisionScratch` that fits it (same results: every element a call reads it has
/// written first in that call). Freed with the object.
final class EncoderBuffers: @unchecked Sendable {
    /// What a call needs, in floats per buffer.
    struct Shape: Equatable {
        let tokens: Int
        let channels: Int
        /// Whether attention runs in the fused kernel (`FullAttention`: an AVX2 CPU and a head
        /// size it takes); its score buffers are then the kernel's work buffers.
        let fusedAttention: Bool
        /// Floats of one score buffer: `maxViewTokens²`, or the fused kernel's work buffer for
        /// `maxViewTokens` keys (about `2 · maxViewTokens · headDim`).
        let scoreFloats: Int
        /// Number of score buffers: it decides how the heads are spread over the threads, so a
        /// kept object is reused only with the same count.
        let scoreBuffers: Int
        let mlpFloats: Int
        let scratchFloats: [Int]

        init(config: CLIPVisionConfig, tokens: Int, maxViewTokens: Int, attentionTasks: Int, threads: Int) {
            let c = config.hiddenSize, i = config.intermediateSize, p = config.patchSize
            self.tokens = tokens
            channels = c
            let headDim = c / max(1, config.headCount)
            fusedAttention = FullAttention.runs(headDim: headDim) && headDim * config.headCount == c
            scoreFloats = fusedAttention ? FullAttention.workFloats(tokens: maxViewTokens, headDim: headDim)
                : maxViewTokens * maxViewTokens
            scoreBuffers = threads > 1 && (fusedAttention || BLAS.callsRunInParallel)
                ? max(1, min(4 * threads, attentionTasks, EncoderBuffers.scoreBytes / max(1, 4 * scoreFloats))) : 1
            mlpFloats = min(tokens, CLIPVisionEncoder.mlpRowBlock) * i
            scratchFloats = [max(3 * c * c, i * c, c * 3 * p * p), max(c * c, c * i)]
        }

        /// Floats of all buffers.
        var floatCount: Int { 5 * tokens * channels + scoreBuffers * scoreFloats + mlpFloats + scratchFloats.reduce(0, +) }
    }

    /// What the buffers were made for.
    let capacity: Shape
    /// Token rows of the current call (at most `capacity.tokens`).
    var tokens: Int
    var channels: Int { capacity.channels }
    /// `[tokens, C]`: the residual stream.
    let hidden: UnsafeMutablePointer<Float>
    /// `[tokens, C]`: LayerNorm output, then the attention output.
    let normed: UnsafeMutablePointer<Float>
    /// `[tokens, 3C]`: q | k | v per token; also the output of out_proj and fc2.
    let qkv: UnsafeMutablePointer<Float>
    /// `[maxViewTokens, maxViewTokens]` each: the attention scores of one head (or, with
    /// `capacity.fusedAttention`, the fused kernel's work buffer), one buffer per run of heads
    /// that the threads take in turn: 4 per thread (for balance when the machine is shared)
    /// within `scoreBytes` in all; one with one thread, or when OpenBLAS calls cannot run side
    /// by side (`BLAS.callsRunInParallel`) and the kernel is not fused.
    let scores: [UnsafeMutablePointer<Float>]
    /// Bytes all score buffers may take when there are several (64 MiB: 8 buffers at 2 threads
    /// up to views of about 1440 tokens; above about 2900 tokens, one head at a time).
    static let scoreBytes = 64 << 20
    /// `[min(tokens, mlpRowBlock), intermediate]`.
    let mlp: UnsafeMutablePointer<Float>
    /// Two scratch areas for widened weights (slot 0: q/k/v, fc1 or the patch weight;
    /// slot 1: out_proj or fc2).
    let scratch: [UnsafeMutablePointer<Float>]

    init(_ shape: Shape) {
        let t = shape.tokens, c = shape.channels
        capacity = shape
        tokens = t
        hidden = .allocate(capacity: t * c)
        normed = .allocate(capacity: t * c)
        qkv = .allocate(capacity: t * 3 * c)
        scores = (0..<shape.scoreBuffers).map { _ in .allocate(capacity: shape.scoreFloats) }
        mlp = .allocate(capacity: shape.mlpFloats)
        scratch = shape.scratchFloats.map { .allocate(capacity: $0) }
    }

    deinit {
        for b in [hidden, normed, qkv, mlp] + scores + scratch { b.deallocate() }
    }

    /// Bytes held.
    var byteCount: Int { capacity.floatCount * MemoryLayout<Float>.stride }

    /// Whether these buffers serve a call of `shape` as buffers made for it would: room in every
    /// buffer, the same number and kind of score buffers, the same width.
    func fits(_ shape: Shape) -> Bool {
        capacity.channels == shape.channels && capacity.scoreBuffers == shape.scoreBuffers
            && capacity.fusedAttention == shape.fusedAttention
            && capacity.tokens >= shape.tokens && capacity.scoreFloats >= shape.scoreFloats
            && capacity.mlpFloats >= shape.mlpFloats
            && zip(capacity.scratchFloats, shape.scratchFloats).allSatisfy { $0 >= $1 }
    }

    /// The weight as row-major F32: the mapping itself for aligned F32 data, otherwise widened
    /// into scratch `slot` (at `offset` floats) with `threads` threads.
    func weightF32(_ w: TensorView, slot: Int, offset: Int = 0, threads: Int) -> UnsafePointer<Float> {
        if w.dtype == .f32, Int(bitPattern: w.data) % MemoryLayout<Float>.alignment == 0 {
            return w.data.assumingMemoryBound(to: Float.self)
        }
        let out = SendablePointer(scratch[slot] + offset)
        let count = w.count
        let parts = chunks(count, parts: count >= 1 << 16 ? threads * 4 : 1)
        parallelFor(parts.count, threads: threads) { part in
            let r = parts[part]
            w.convert(from: r.lowerBound, count: r.count, into: out.p + r.lowerBound)
        }
        return UnsafePointer(out.p)
    }

    /// `out[rows, Σ nᵢ] = x[rows, C] · [W₀; W₁; …]ᵀ (+ bias)`, the weights `[nᵢ, C]` stacked
    /// along the output: one GEMM per run of weights that are contiguous as F32 (widened ones
    /// always are); with `bfloat16`, one `BF16Product` per (BF16) weight; with `int8` (the
    /// weights' stacked Q8_0 copy), one int8 product with `kernel`.
    func linear(_ x: UnsafePointer<Float>, rows: Int, weights: [TensorView], slot: Int, bias: [Float]?,
                into out: UnsafeMutablePointer<Float>, bfloat16: Bool, int8: QuantizedMatrix? = nil,
                kernel: QuantKernel? = nil, context: ComputeContext) {
        let threads = context.threads
        let k = channels
        let width = weights.reduce(0) { $0 + $1.shape[0] }
        var segments: [(pointer: UnsafePointer<Float>, column: Int, count: Int)] = []
        var column = 0, offset = 0
        if let int8 {
            MatMul.linear(x, rows: rows, weight: int8, into: out, ldOut: width, context: context, kernel: kernel)
        }
        for w in weights where bfloat16 && int8 == nil {
            BF16Product.linear(x, rows: rows, weight: w, into: out + column, ldOut: width, threads: threads)
            column += w.shape[0]
        }
        for w in weights where !bfloat16 && int8 == nil {
            let n = w.shape[0]
            let pointer = weightF32(w, slot: slot, offset: offset, threads: threads)
            if pointer == UnsafePointer(scratch[slot] + offset) { offset += n * k }
            if let last = segments.last, last.pointer + last.count * k == pointer {
                segments[segments.count - 1].count += n
            } else {
                segments.append((pointer, column, n))
            }
            column += n
        }
        for s in segments {
            BLAS.sgemm(transB: true, m: rows, n: s.count, k: k, a: x, lda: k, b: s.pointer, ldb: k,
                       c: out + s.column, ldc: width, threads: threads, wholeRows: true)
        }
        guard let bias else { return }
        let o = SendablePointer(out)
        let parts = chunks(rows, parts: threads)
        bias.withUnsafeBufferPointer { b in
            parallelFor(parts.count, threads: threads) { part in
                for r in parts[part] {
                    let row = o.p + r * width
                    for j in 0..<width { row[j] += b[j] }
                }
            }
        }
    }

    /// `hidden[r] += delta[r] + bias` for every token row (`delta` has row stride C).
    func addResidual(_ delta: UnsafePointer<Float>, bias: [Float], rows: Int, threads: Int) {
        let c = channels
        let h = SendablePointer(hidden)
        let parts = chunks(rows, parts: threads)
        bias.withUnsafeBufferPointer { b in
            parallelFor(parts.count, threads: threads) { part in
                for r in parts[part] {
                    let row = h.p + r * c, d = delta + r * c
                    for j in 0..<c { row[j] += d[j] + b[j] }
                }
            }
        }
    }
}
