import CLlavaUHD

/// One pyramid level's value projection, `X = LN_kv(F·Wᵀ + b)` per pixel (docs/MODEL.md §4 step 1;
/// upstream `features_{L}x_projector` then `ln_kv`, or the v1 `kv_proj`), and its RoIAlign
/// pooling over the windows. Two exact ways to get the pooled values `Σ_p ω_p X_p`:
///
/// * `projectPixels`: X at every pixel (P·C·E multiply-adds), then pooled E-wide.
/// * `poolThenProject`: with `W_c`, `b_c` the weight and bias centred over the E outputs and
///   `s_p = 1/√(‖W_c F_p + b_c‖²/E + eps)` each pixel's LayerNorm scale, a pooled sample is
///   `γ ⊙ centre(W z + b σ) + β` where `z = Σ ω_p s_p F_p` (C-wide) and `σ = Σ ω_p s_p`
///   (Σω = 1). The scales need `‖W_c F + b_c‖² = F·(G F) + 2 b_cᵀW_c F + ‖b_c‖²` with the Gram
///   matrix `G = W_cᵀW_c` (C² per pixel, or less when `G·F` is obtained by upsampling
///   `G·F` of the previous level, see `HiwinProjector`); the E-wide Linear then runs on the
///   S window samples only (S·C·E). Cheaper for large levels when E > C.
final class LevelProjection: @unchecked Sendable {
    enum Method: Sendable {
        case projectPixels
        case poolThenProject
    }

    /// A level of one view, ready for `values`.
    enum Prepared {
        /// `[pixels, E]`: X at every pixel.
        case pixels([Float])
        /// `[samples, C]` and `[samples]`: z and σ of every window sample.
        case pooled(z: [Float], sigma: [Float])
    }

    let channels: Int
    let embedDim: Int
    /// `[E, C]`: the F32 weight, or the checkpoint's own BF16 tensor when the products read it
    /// in place (see `init`).
    let weight: TensorView
    let bias: [Float]
    let normWeight: [Float]
    let normBias: [Float]
    let eps: Float
    /// `G = W_cᵀ W_c` (`[C, C]`), `2·W_cᵀ b_c` and `‖b_c‖²`; nil when the level is always
    /// projected per pixel.
    private let gram: FloatStorage?
    private let gramLinear: [Float]
    private let gramConstant: Float
    /// Forces a method (tests); nil picks the cheaper one.
    let forcedMethod: Method?

    /// `weight` is `[E, C]` F32, `bias` E values (zeros for a Linear without bias). The Gram
    /// data is computed (E·C² multiply-adds) when pooling can be the cheaper method (E > C
    /// and `mayPool`) or when it is forced. `stored` is the checkpoint tensor `weight` was
    /// widened from, if it was not changed: when it is BF16 and `BF16WeightProduct` runs on this
    /// CPU, the products read it (the same values, summed in that kernel's order; half the bytes).
    init(weight: FloatStorage, stored: TensorView? = nil, embedDim: Int, channels: Int, bias: [Float],
         normWeight: [Float], normBias: [Float], eps: Float, mayPool: Bool, forcedMethod: Method?) {
        self.channels = channels
        self.embedDim = embedDim
        if let stored, stored.dtype == .bf16, stored.shape == [embedDim, channels], Int(bitPattern: stored.data) % 2 == 0,
           BF16WeightProduct.isAvailable {
            self.weight = stored
        } else {
            self.weight = weight.tensorView(name: "level projection", shape: [embedDim, channels])
        }
        self.bias = bias
        self.normWeight = normWeight
        self.normBias = normBias
        self.eps = eps
        self.forcedMethod = forcedMethod
        let needsGram = forcedMethod.map { $0 == .poolThenProject } ?? (mayPool && embedDim > channels)
        guard needsGram else {
            gram = nil
            gramLinear = []
            gramConstant = 0
            return
        }
        // Centre W over its E rows and b over its E entries.
        let e = embedDim, c = channels
        var mean = [Double](repeating: 0, count: c)
        for r in 0..<e { for j in 0..<c { mean[j] += Double(weight.pointer[r * c + j]) } }
        for j in 0..<c { mean[j] /= Double(e) }
        let centred = FloatStorage(count: e * c)
        for r in 0..<e { for j in 0..<c { centred.pointer[r * c + j] = Float(Double(weight.pointer[r * c + j]) - mean[j]) } }
        let biasMean = bias.reduce(0.0) { $0 + Double($1) } / Double(e)
        let centredBias = bias.map { Double($0) - biasMean }
        let g = FloatStorage(count: c * c)
        BLAS.sgemm(transA: true, m: c, n: c, k: e, a: centred.pointer, lda: c, b: centred.pointer, ldb: c,
                   c: g.pointer, ldc: c)
        var linear = [Double](repeating: 0, count: c)
        for r in 0..<e where centredBias[r] != 0 {
            for j in 0..<c { linear[j] += centredBias[r] * Double(centred.pointer[r * c + j]) }
        }
        gram = g
        gramLinear = linear.map { Float(2 * $0) }
        gramConstant = Float(centredBias.reduce(0.0) { $0 + $1 * $1 })
    }

    /// Whether `poolThenProject` is available.
    var canPool: Bool { gram != nil }

    /// The method for a level of `pixels` pixels pooled to `samples` samples, whose `G·F`
    /// costs `gramCost` multiply-adds (P·C² when computed directly).
    func method(pixels: Int, samples: Int, gramCost: Int) -> Method {
        if let forcedMethod { return forcedMethod }
        guard canPool else { return .projectPixels }
        return gramCost + samples * channels * embedDim < pixels * channels * embedDim ? .poolThenProject : .projectPixels
    }

    /// `F·G` for a `[pixels, C]` map (`[pixels, C]`). Requires `canPool`.
    func gramProduct(_ features: UnsafePointer<Float>, pixels: Int, context: ComputeContext) -> [Float] {
        let threads = context.threads
        // sgemm writes every value (beta 0): no zeroing pass first.
        return context.timed("level Gram products", operations: 2.0 * Double(pixels * channels * channels)) {
            HugePages.writtenFloats(count: pixels * channels) { o in
                BLAS.sgemm(m: pixels, n: channels, k: channels, a: features, lda: channels, b: gram!.pointer, ldb: channels,
                           c: o, ldc: channels, threads: threads)
            }
        }
    }

    /// Prepares a `[height, width, C]` map for `values`. For `.poolThenProject`,
    /// `gramProduct` may supply `F·G` (otherwise it is computed).
    func prepare(_ features: UnsafePointer<Float>, layout: WindowLayout, method: Method, gramProduct: [Float]?,
                 context: ComputeContext) -> Prepared {
        let pixels = layout.height * layout.width
        switch method {
        case .projectPixels:
            // The product writes every value: no zeroing pass first.
            let x = context.timed("level projection per pixel", operations: 2.0 * Double(pixels * channels * embedDim)) {
                HugePages.writtenFloats(count: pixels * embedDim) { out in
                    MatMul.linear(features, rows: pixels, weight: weight, into: out, context: context)
                    Elementwise.addRowVector(bias, to: out, rows: pixels, cols: embedDim, threads: context.threads)
                    Normalization.layerNorm(out, rows: pixels, cols: embedDim, gamma: normWeight, beta: normBias, eps: eps,
                                            into: out, threads: context.threads)
                }
            }
            return .pixels(x)
        case .poolThenProject:
            let product = gramProduct ?? self.gramProduct(features, pixels: pixels, context: context)
            return context.timed("level scales + RoIAlign pooling") { pool(features, layout: layout, product: product, context: context) }
        }
    }

    /// The `.poolThenProject` preparation: each pixel's LayerNorm scale from `F·G`, then z and σ.
    private func pool(_ features: UnsafePointer<Float>, layout: WindowLayout, product: [Float],
                      context: ComputeContext) -> Prepared {
        let pixels = layout.height * layout.width
        var scales = [Float](repeating: 0, count: pixels)
        product.withUnsafeBufferPointer { t in
            gramLinear.withUnsafeBufferPointer { u in
                for p in 0..<pixels {
                    let f = features + p * channels
                    let q = luhd_proj_dot(t.baseAddress! + p * channels, f, channels)
                        + luhd_proj_dot(u.baseAddress!, f, channels) + gramConstant
                    scales[p] = 1 / (max(q, 0) / Float(embedDim) + eps).squareRoot()
                }
            }
        }
        let samples = layout.sampleCount
        var z = [Float](repeating: 0, count: samples * channels)
        var sigma = [Float](repeating: 0, count: samples)
        scales.withUnsafeBufferPointer { s in
            z.withUnsafeMutableBufferPointer { zb in
                layout.roi.apply(features, channels: channels, into: zb.baseAddress!, pixelScale: s.baseAddress!,
                                 threads: context.threads)
            }
            sigma.withUnsafeMutableBufferPointer { sb in
                layout.roi.apply(s.baseAddress!, channels: 1, into: sb.baseAddress!, threads: context.threads)
            }
        }
        return .pooled(z: z, sigma: sigma)
    }

    /// Pooled values of window samples `cells` into `out` (`[cells.count, E]`).
    func values(_ prepared: Prepared, layout: WindowLayout, cells: Range<Int>, into out: UnsafeMutablePointer<Float>,
                context: ComputeContext) {
        let e = embedDim
        switch prepared {
        case .pixels(let x):
            context.timed("level RoIAlign pooling (E wide)") {
                x.withUnsafeBufferPointer { xb in
                    layout.roi.apply(xb.baseAddress!, channels: e, into: out, cells: cells, threads: context.threads)
                }
            }
        case .pooled(let z, let sigma):
            context.timed("level projection of window samples", operations: 2.0 * Double(cells.count * channels * e)) {
                z.withUnsafeBufferPointer { zb in
                    let x = zb.baseAddress! + cells.lowerBound * channels
                    MatMul.linear(x, rows: cells.count, weight: weight, into: out, context: context)
                }
                bias.withUnsafeBufferPointer { b in
                    normWeight.withUnsafeBufferPointer { g in
                        normBias.withUnsafeBufferPointer { bt in
                            let rows = SendablePointer(out)
                            let bp = SendablePointer(UnsafeMutablePointer(mutating: b.baseAddress!))
                            let gp = SendablePointer(UnsafeMutablePointer(mutating: g.baseAddress!))
                            let tp = SendablePointer(UnsafeMutablePointer(mutating: bt.baseAddress!))
                            let parts = chunks(cells.count, parts: context.threads)
                            parallelFor(parts.count, threads: context.threads) { part in
                                for row in parts[part] {
                                    luhd_proj_centre_normalise(rows.p + row * e, e, sigma[cells.lowerBound + row],
                                                               bp.p, gp.p, tp.p)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
