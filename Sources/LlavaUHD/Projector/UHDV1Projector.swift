/// The LLaVA-UHD v1 resampler (`adapt_spatial_resampler_v1`, docs/MODEL.md §8; upstream
/// `AdaptSpatialResampler_v1.forward`): no VDIM, one level.
///
/// Per view: `X = LN_kv(kv_proj(F))` (kv_proj without bias; the identity when the feature
/// width already equals E, as upstream); keys `X + bicubic(pos_embed, h × w)`, values X, both
/// pooled by RoIAlign over the 12×12 windows; one query set `LN_q(query) + pos_embed` through
/// the attention (query i sees window i only); `LN_post`; `· proj`. 144 × E per view.
package final class UHDV1Projector: Projector {
    package let config: ProjectorConfig
    let resampler: WindowResampler
    let projection: LevelProjection
    let queries: [Float]
    let output: OutputProjection

    /// See `ProjectorConfig.makeProjector`; `levelMethod` as for `HiwinProjector`.
    init(config: ProjectorConfig, weights: WeightStore,
         levelMethod: LevelProjection.Method? = nil) throws(LlavaError) {
        let e = config.embedDim, c = config.visionHiddenSize, g2 = config.tokensPerView
        var list = WeightChecklist(store: weights, prefix: ProjectorConfig.tensorPrefix)
        let attention = WindowAttention(checklist: &list, embedDim: e, heads: config.headCount)
        let posEmbed = list.tensor("pos_embed", shape: [g2, e])
        let query = list.tensor("query", shape: [g2, e])
        let kvProj: TensorView? = c == e ? nil : list.tensor("kv_proj.weight", shape: [e, c])
        let lnQ = (list.tensor("ln_q.weight", shape: [e]), list.tensor("ln_q.bias", shape: [e]))
        let lnKV = (list.tensor("ln_kv.weight", shape: [e]), list.tensor("ln_kv.bias", shape: [e]))
        let lnPost = (list.tensor("ln_post.weight", shape: [e]), list.tensor("ln_post.bias", shape: [e]))
        let proj = list.tensor("proj", shape: [e, e])
        try list.finish("v1 projector")

        self.config = config
        let table = posEmbed.floats()
        resampler = WindowResampler(attention: attention, positionTable: table, grid: config.gridSize,
                                    roundPositionsToBFloat16: false)
        queries = attention.projectQueries(
            HiwinProjector.normalisedQueries([query], norm: lnQ, positions: table, embedDim: e), sets: 1,
            context: ComputeContext())
        let weight: FloatStorage
        if let kvProj {
            weight = FloatStorage(widening: kvProj)
        } else {
            weight = FloatStorage(count: e * c)
            for i in 0..<e { weight.pointer[i * c + i] = 1 }
        }
        projection = LevelProjection(weight: weight, embedDim: e, channels: c, bias: [Float](repeating: 0, count: e),
                                     normWeight: lnKV.0.floats(), normBias: lnKV.1.floats(), eps: HiwinProjector.normEps,
                                     mayPool: false, forcedMethod: levelMethod)
        output = OutputProjection(norm: lnPost, proj: proj)
    }

    func check(_ view: ProjectorInput) throws(LlavaError) {
        guard view.channels == config.visionHiddenSize else {
            throw LlavaError(.invalidArgument,
                             "projector input has \(view.channels) feature channels, the checkpoint expects \(config.visionHiddenSize)")
        }
    }

    /// The v1 projector has no VDIM: the pyramid is the 1x level alone.
    package func pyramid(_ view: ProjectorInput, context: ComputeContext) throws(LlavaError) -> FeaturePyramid {
        try check(view)
        return FeaturePyramid(levels: [
            FeaturePyramid.Level(scale: 1, rows: view.rows, columns: view.columns, channels: view.channels,
                                 values: HiwinProjector.toCHW(view.features, height: view.rows, width: view.columns,
                                                              channels: view.channels),
                                 usedByProjector: true),
        ])
    }

    package func project(_ views: [ProjectorInput], context: ComputeContext) throws(LlavaError) -> [[Float]] {
        for v in views { try check(v) }
        guard !views.isEmpty else { return [] }
        var layouts: [String: WindowLayout] = [:]
        var pooledViews: [[PooledLevel]] = []
        for view in views {
            try context.checkAbort("projector")
            let key = "\(view.rows)x\(view.columns)"
            let layout: WindowLayout
            if let l = layouts[key] {
                layout = l
            } else {
                layout = try WindowLayout(height: view.rows, width: view.columns, grid: config.gridSize)
                layouts[key] = layout
            }
            let pixels = view.rows * view.columns, c = config.visionHiddenSize
            let method = projection.method(pixels: pixels, samples: layout.sampleCount, gramCost: pixels * c * c)
            let prepared = view.features.withUnsafeBufferPointer {
                projection.prepare($0.baseAddress!, layout: layout, method: method, gramProduct: nil, context: context)
            }
            pooledViews.append([PooledLevel(layout: layout, projection: projection, embedding: nil, prepared: prepared)])
        }
        var attended = try resampler.run(queries: queries, sets: 1, views: pooledViews, context: context)
        try context.checkAbort("projector")
        return output.apply(&attended, views: views.count, tokensPerView: config.tokensPerView, context: context)
    }
}
