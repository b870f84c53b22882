/// The last step of both resamplers (`HiwinProjector`, `UHDV1Projector`): `LN_post` over each
/// token, then `· proj`, cut into one `[tokensPerView, E]` block per view.
struct OutputProjection: Sendable {
    let normWeight: [Float]
    let normBias: [Float]
    /// `[E, E]`, applied as `x · proj` (not transposed, unlike a Linear weight).
    let proj: TensorView

    /// `norm`: the `ln_post` weight and bias (`[E]` each).
    init(norm: (TensorView, TensorView), proj: TensorView) {
        normWeight = norm.0.floats()
        normBias = norm.1.floats()
        self.proj = proj
    }

    /// `tokens`: `[views · tokensPerView, E]`, normalised in place; returns each view's
    /// `[tokensPerView · E]` output.
    func apply(_ tokens: inout [Float], views: Int, tokensPerView: Int, context: ComputeContext) -> [[Float]] {
        let e = normWeight.count, rows = views * tokensPerView
        var out = [Float](repeating: 0, count: rows * e)
        tokens.withUnsafeMutableBufferPointer { x in
            Normalization.layerNorm(x.baseAddress!, rows: rows, cols: e, gamma: normWeight, beta: normBias,
                                    eps: HiwinProjector.normEps, into: x.baseAddress!, threads: context.threads)
            out.withUnsafeMutableBufferPointer { o in
                MatMul.multiply(x.baseAddress!, rows: rows, by: proj, into: o.baseAddress!, context: context)
            }
        }
        let block = tokensPerView * e
        return (0..<views).map { v in Array(out[(v * block)..<((v + 1) * block)]) }
    }
}
