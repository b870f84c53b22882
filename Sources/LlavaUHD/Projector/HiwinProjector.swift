import CLlavaUHD

/// The LLaVA-UHD v2 projector: VDIM's inverse semantic pyramid, then the hierarchical window
/// (Hiwin) attention (docs/MODEL.md §3, §4; upstream `AdaptSpatialResampler.forward_with_featup`,
/// `prepare_single_key_value`, `query_with_parallel_attn`).
///
/// Per view and level L of `feature_scale_mask`: `X_L = LN_kv(features_{L}x_projector(F_L))`;
/// keys `X_L + bf16(bicubic(pos_embed, h_L × w_L)) + bf16(feature_{L}x_embedding)` (upstream
/// rounds these two terms to bfloat16 even in a float32 run), values `X_L`, both
/// pooled by RoIAlign over the 12×12 windows; four query sets `LN_q(query_k) + pos_embed`
/// through the shared attention (query i sees window i only); `LN_proj` on each result;
/// concatenation (4E) → `cat_proj` → `LN_post` → `· proj`. Output: 144 × E per view.
///
/// The top VDIM level's fix-up (`F + 0.1·(W_f F + b_f)`) is linear, so `project` folds it
/// into that level's projector (`W' = W(I + 0.1 W_f)`, `b' = b + 0.1 W b_f`) instead of
/// applying it to every pixel; `pyramid` applies it as upstream does. Large levels are pooled
/// before their E-wide projection (`LevelProjection.poolThenProject`); the Gram product
/// `F_L·G` those need is obtained as the JBU upsampling of `F_{L−1}·G` (the stage is linear
/// in its source), a quarter of the pixels.
package final class HiwinProjector: Projector {
    package let config: ProjectorConfig
    let vdim: VDIMPyramid
    let resampler: WindowResampler
    /// Per projected scale, in key order: its projection and embedding.
    let levels: [(scale: Int, projection: LevelProjection, embedding: [Float])]
    /// `LN_q(query_k) + pos_embed` for k = 1...4, projected by the attention's query
    /// in-projection and scaled, `[4 · 144, E]`.
    let queries: [Float]
    let normProjWeight: [Float], normProjBias: [Float]
    let catProjWeight: TensorView
    /// With `.int8`: cat_proj's Q8_0 copy and the kernel that multiplies it (see `makeProjector`;
    /// the attention's value heads and out_proj, and proj get theirs too).
    let catProjInt8: (weight: QuantizedMatrix, kernel: QuantKernel?)?
    let catProjBias: [Float]
    let output: OutputProjection

    static let querySets = 4
    static let normEps: Float = 1e-6

    /// Loads and checks every tensor the config's mask needs (see
    /// `ProjectorConfig.makeProjector`). `levelMethod` forces how every level is projected
    /// and pooled (tests; nil picks the cheaper way per level and view size).
    init(config: ProjectorConfig, weights: WeightStore, levelMethod: LevelProjection.Method? = nil,
         arithmetic: MatrixArithmetic = .float32, quantKernel: QuantKernel? = nil, threads: Int = 1) throws(LlavaError) {
        let e = config.embedDim, c = config.visionHiddenSize, g2 = config.tokensPerView
        let context = ComputeContext()
        guard let topScale = config.vdimTopScale else {
            throw LlavaError(.internal, "HiwinProjector built for a v1 config")
        }
        var list = WeightChecklist(store: weights, prefix: ProjectorConfig.tensorPrefix)
        let vdim = VDIMPyramid(checklist: &list, topScale: topScale, channels: c)
        let attention = WindowAttention(checklist: &list, embedDim: e, heads: config.headCount)
        let posEmbed = list.tensor("pos_embed", shape: [g2, e])
        let queryTensors = (1...Self.querySets).map { list.tensor("query_\($0)", shape: [g2, e]) }
        func norm(_ name: String) -> (TensorView, TensorView) {
            (list.tensor(name + ".weight", shape: [e]), list.tensor(name + ".bias", shape: [e]))
        }
        let lnQ = norm("ln_q"), lnKV = norm("ln_kv"), lnProj = norm("ln_proj"), lnPost = norm("ln_post")
        let levelTensors = config.projectedScales.map { s in
            (scale: s,
             weight: list.tensor("features_\(s)x_projector.weight", shape: [e, c]),
             bias: list.tensor("features_\(s)x_projector.bias", shape: [e]),
             embedding: list.tensor("feature_\(s)x_embedding", shape: [1, 1, e]))
        }
        let catWeight = list.tensor("cat_proj.weight", shape: [e, Self.querySets * e])
        let catBias = list.tensor("cat_proj.bias", shape: [e])
        let proj = list.tensor("proj", shape: [e, e])
        try list.finish("Hiwin projector")

        self.config = config
        self.vdim = vdim
        let table = posEmbed.floats()
        let int8 = arithmetic == .int8
        let int8Copies = int8 ? (threads: threads, kernel: quantKernel) : nil
        resampler = WindowResampler(attention: attention, positionTable: table, grid: config.gridSize,
                                    roundPositionsToBFloat16: true,
                                    int8: int8 ? attention.int8Weights(kernel: quantKernel, threads: threads) : nil)
        // Upstream adds `pos_embed.to(dtype)` and `embedding.to(dtype)` with dtype a parameter
        // defaulting to bfloat16 (no-ops for a BF16 checkpoint).
        queries = attention.projectQueries(
            Self.normalisedQueries(queryTensors, norm: lnQ, positions: PositionPooling.roundedToBFloat16(table),
                                   embedDim: e),
            sets: Self.querySets, context: context)
        normProjWeight = lnProj.0.floats(); normProjBias = lnProj.1.floats()
        catProjWeight = catWeight
        catProjInt8 = int8 ? Int8Product.quantize([catWeight], threads: threads).map { (weight: $0, kernel: quantKernel) } : nil
        catProjBias = catBias.floats()
        output = OutputProjection(norm: lnPost, proj: proj, int8: int8Copies)
        let kvWeight = lnKV.0.floats(), kvBias = lnKV.1.floats()
        levels = levelTensors.map { t in
            var weight = FloatStorage(widening: t.weight)
            var bias = t.bias.floats()
            if t.scale == topScale {
                (weight, bias) = Self.foldFixup(weight: weight, bias: bias, into: vdim, embedDim: e, context: context)
            }
            let projection = LevelProjection(weight: weight, stored: t.scale == topScale ? nil : t.weight,
                                             embedDim: e, channels: c, bias: bias,
                                             normWeight: kvWeight, normBias: kvBias, eps: Self.normEps,
                                             mayPool: t.scale > 1, forcedMethod: levelMethod)
            return (t.scale, projection, PositionPooling.roundedToBFloat16(t.embedding.floats()))
        }
    }

    /// `W' = W + 0.1·W·W_f` and `b' = b + 0.1·W·b_f` for a level whose input is the raw top
    /// level instead of the fixed-up one.
    static func foldFixup(weight: FloatStorage, bias: [Float], into vdim: VDIMPyramid, embedDim e: Int,
                          context: ComputeContext) -> (FloatStorage, [Float]) {
        let c = vdim.channels
        let product = FloatStorage(count: e * c)
        MatMul.multiply(weight.pointer, rows: e, by: vdim.fixupWeight, into: product.pointer, context: context)
        let folded = FloatStorage(count: e * c)
        for i in 0..<(e * c) { folded.pointer[i] = weight.pointer[i] + 0.1 * product.pointer[i] }
        let fixBias = vdim.fixupBias.floats()
        var newBias = bias
        for r in 0..<e { newBias[r] += 0.1 * dot(weight.pointer + r * c, fixBias, c) }
        return (folded, newBias)
    }

    /// `LN_q(query_k) + pos_embed` for each query set, stacked.
    static func normalisedQueries(_ sets: [TensorView], norm: (TensorView, TensorView), positions: [Float],
                                  embedDim e: Int) -> [Float] {
        let gamma = norm.0.floats(), beta = norm.1.floats()
        var out: [Float] = []
        for q in sets {
            var x = q.floats()
            let rows = x.count / e
            x.withUnsafeMutableBufferPointer { xb in
                Normalization.layerNorm(xb.baseAddress!, rows: rows, cols: e, gamma: gamma, beta: beta,
                                        eps: normEps, into: xb.baseAddress!)
            }
            for i in 0..<x.count { x[i] += positions[i] }
            out += x
        }
        return out
    }

    /// Checks a view against the config: its feature width, and a patch grid of at least
    /// 2×2 (VDIM's reflect padding of the 2x level needs 4×4).
    func check(_ view: ProjectorInput) throws(LlavaError) {
        guard view.channels == config.visionHiddenSize else {
            throw LlavaError(.invalidArgument,
                             "projector input has \(view.channels) feature channels, the checkpoint expects \(config.visionHiddenSize)")
        }
        try JBUStage.checkGuidanceSize(height: 2 * view.rows, width: 2 * view.columns)
    }

    package func pyramid(_ view: ProjectorInput, context: ComputeContext) throws(LlavaError) -> FeaturePyramid {
        try check(view)
        let upsampled = try view.features.withUnsafeBufferPointer { (f) throws(LlavaError) in
            try view.pixels.withUnsafeBufferPointer { (p) throws(LlavaError) in
                try vdim.levels(features: f.baseAddress!, rows: view.rows, columns: view.columns,
                                pixels: p.baseAddress!, pixelHeight: view.pixelHeight, pixelWidth: view.pixelWidth,
                                applyTopFixup: true, context: context)
            }
        }
        let used = Set(config.projectedScales)
        var levels = [FeaturePyramid.Level(scale: 1, rows: view.rows, columns: view.columns, channels: view.channels,
                                           values: Self.toCHW(view.features, height: view.rows, width: view.columns,
                                                              channels: view.channels),
                                           usedByProjector: true)]
        for l in upsampled {
            levels.append(FeaturePyramid.Level(scale: l.scale, rows: l.height, columns: l.width, channels: view.channels,
                                               values: Self.toCHW(l.values, height: l.height, width: l.width,
                                                                  channels: view.channels),
                                               usedByProjector: used.contains(l.scale)))
        }
        return FeaturePyramid(levels: levels)
    }

    /// `[height, width, channels]` → `[channels, height, width]`.
    static func toCHW(_ x: [Float], height: Int, width: Int, channels: Int) -> [Float] {
        let pixels = height * width
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                luhd_proj_transpose_rows(src.baseAddress!, pixels, channels, 0, pixels, dst.baseAddress!)
            }
        }
        return out
    }

    package func project(_ views: [ProjectorInput], context: ComputeContext) throws(LlavaError) -> [[Float]] {
        for v in views { try check(v) }
        guard !views.isEmpty else { return [] }
        var layouts: [String: WindowLayout] = [:]
        func layout(_ h: Int, _ w: Int) throws(LlavaError) -> WindowLayout {
            if let l = layouts["\(h)x\(w)"] { return l }
            let l = try WindowLayout(height: h, width: w, grid: config.gridSize)
            layouts["\(h)x\(w)"] = l
            return l
        }
        var pooledViews: [[PooledLevel]] = []
        let jbuScratch = context.visionScratch?.takeJBU() ?? JBUScratch()
        defer { context.visionScratch?.keep(jbuScratch) }
        for view in views {
            try context.checkAbort("projector")
            let upsampled = try view.features.withUnsafeBufferPointer { (f) throws(LlavaError) in
                try view.pixels.withUnsafeBufferPointer { (p) throws(LlavaError) in
                    try vdim.levels(features: f.baseAddress!, rows: view.rows, columns: view.columns,
                                    pixels: p.baseAddress!, pixelHeight: view.pixelHeight, pixelWidth: view.pixelWidth,
                                    applyTopFixup: false, scratch: jbuScratch, context: context)
                }
            }
            var pooled: [PooledLevel] = []
            for level in levels {
                let h = view.rows * level.scale, w = view.columns * level.scale, pixels = h * w
                let l = try layout(h, w)
                let c = config.visionHiddenSize
                // F_L·G via the stage that made level L: a quarter of the pixels, plus the
                // upsampling (about 65 multiply-adds per value).
                let gramCost = level.scale == 1 ? pixels * c * c : pixels / 4 * c * c + pixels * c * 65
                let method = level.projection.method(pixels: pixels, samples: l.sampleCount, gramCost: gramCost)
                let map = level.scale == 1 ? view.features : upsampled[level.scale == 2 ? 0 : 1].values
                var product: [Float]? = nil
                if method == .poolThenProject, level.scale > 1 {
                    let below = level.scale == 2 ? view.features : upsampled[0].values
                    let stage = level.scale == 2 ? 0 : 1
                    let t = below.withUnsafeBufferPointer { level.projection.gramProduct($0.baseAddress!, pixels: pixels / 4, context: context) }
                    product = try context.timed("level Gram upsampling (JBU)",
                                                operations: JBUStage.upsampleOperations(pixels: pixels, channels: c)) { () throws(LlavaError) in
                        try t.withUnsafeBufferPointer { (tb) throws(LlavaError) in
                            try vdim.stages[stage].upsample(tb.baseAddress!, height: h / 2, width: w / 2, channels: c,
                                                            kernels: upsampled[stage].kernels, threads: context.threads,
                                                            scratch: jbuScratch)
                        }
                    }
                }
                let prepared = map.withUnsafeBufferPointer {
                    level.projection.prepare($0.baseAddress!, layout: l, method: method, gramProduct: product, context: context)
                }
                pooled.append(PooledLevel(layout: l, projection: level.projection, embedding: level.embedding, prepared: prepared))
            }
            pooledViews.append(pooled)
        }
        let e = config.embedDim, sets = Self.querySets, windows = config.tokensPerView
        var attended = try resampler.run(queries: queries, sets: sets, views: pooledViews, context: context)
        try context.checkAbort("projector")

        // LN_proj on every (view, window, set) row; the 4 sets of a window are then one 4E row.
        let rows = views.count * windows
        attended.withUnsafeMutableBufferPointer { a in
            Normalization.layerNorm(a.baseAddress!, rows: rows * sets, cols: e, gamma: normProjWeight, beta: normProjBias,
                                    eps: Self.normEps, into: a.baseAddress!, threads: context.threads)
        }
        var fused = HugePages.zeroedFloats(count: rows * e)
        context.timed("Hiwin cat_proj", operations: 2.0 * Double(rows * sets * e * e)) {
            attended.withUnsafeBufferPointer { a in
                fused.withUnsafeMutableBufferPointer { f in
                    if let q = catProjInt8 {
                        MatMul.linear(a.baseAddress!, rows: rows, weight: q.weight, into: f.baseAddress!, context: context,
                                      kernel: q.kernel)
                    } else {
                        MatMul.linear(a.baseAddress!, rows: rows, weight: catProjWeight, into: f.baseAddress!, context: context)
                    }
                    Elementwise.addRowVector(catProjBias, to: f.baseAddress!, rows: rows, cols: e, threads: context.threads)
                }
            }
        }
        return output.apply(&fused, views: views.count, tokensPerView: windows, context: context)
    }
}
