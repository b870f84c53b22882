import CLlavaUHD

/// The last step of both resamplers (`HiwinProjector`, `UHDV1Projector`): `LN_post` over each
/// token, then `· proj`, cut into one `[tokensPerView, E]` block per view.
struct OutputProjection: Sendable {
    let normWeight: [Float]
    let normBias: [Float]
    /// `[E, E]`, applied as `x · proj` (not transposed, unlike a Linear weight).
    let proj: TensorView
    /// With `MatrixArithmetic.int8`: a Q8_0 copy of `projᵀ` (a Linear weight, `[out, in]`)
    /// and its kernel.
    let int8: (weight: QuantizedMatrix, kernel: QuantKernel?)?

    /// `norm`: the `ln_post` weight and bias (`[E]` each). `int8`: make the Q8_0 copy with
    /// `threads` (float32 products when it cannot be made).
    init(norm: (TensorView, TensorView), proj: TensorView, int8: (threads: Int, kernel: QuantKernel?)? = nil) {
        normWeight = norm.0.floats()
        normBias = norm.1.floats()
        self.proj = proj
        self.int8 = int8.flatMap { q in
            let k = proj.shape[0], n = proj.shape[1]
            let widened = FloatStorage(widening: proj)
            let transposed = FloatStorage(count: k * n)
            luhd_proj_transpose_rows(widened.pointer, k, n, 0, k, transposed.pointer)
            return Int8Product.quantize([transposed.tensorView(name: proj.name + "ᵀ", shape: [n, k])], threads: q.threads)
                .map { (weight: $0, kernel: q.kernel) }
        }
    }

    /// `tokens`: `[views · tokensPerView, E]`, normalised in place; returns each view's
    /// `[tokensPerView · E]` output.
    func apply(_ tokens: inout [Float], views: Int, tokensPerView: Int, context: ComputeContext) -> [[Float]] {
        let e = normWeight.count, rows = views * tokensPerView
        var out = HugePages.zeroedFloats(count: rows * e)
        tokens.withUnsafeMutableBufferPointer { x in
            Normalization.layerNorm(x.baseAddress!, rows: rows, cols: e, gamma: normWeight, beta: normBias,
                                    eps: HiwinProjector.normEps, into: x.baseAddress!, threads: context.threads)
            out.withUnsafeMutableBufferPointer { o in
                context.timed("Hiwin proj", operations: 2.0 * Double(rows * e * e)) {
                    if let int8 {
                        MatMul.linear(x.baseAddress!, rows: rows, weight: int8.weight, into: o.baseAddress!, context: context,
                                      kernel: int8.kernel)
                    } else {
                        MatMul.multiply(x.baseAddress!, rows: rows, by: proj, into: o.baseAddress!, context: context)
                    }
                }
            }
        }
        let block = tokensPerView * e
        return (0..<views).map { v in Array(out[(v * block)..<((v + 1) * block)]) }
    }
}
