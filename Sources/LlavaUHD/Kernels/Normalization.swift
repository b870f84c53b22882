import CLlavaUHD

/// Row-wise normalisations over the last dimension of a row-major `[rows, cols]` matrix.
/// Statistics are accumulated in Double (vectorised, two passes for LayerNorm), so the result
/// does not depend on the row length's rounding behaviour; `x` and `out` may be the same
/// buffer. Rows are split across `threads`; results do not depend on it.
package enum Normalization {
    /// LayerNorm: `(x − mean) / sqrt(var + eps) · gamma + beta` (biased variance, as PyTorch).
    package static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?, eps: Float,
                                 into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        guard rows > 0, cols > 0 else { return }
        let o = SendablePointer(out)
        VectorKernels.forEachRange(rows, threads: threads, minimumPerThread: max(1, (1 << 14) / cols)) { r in
            let layerNorm = VectorKernels.table.layer_norm
            for row in r { layerNorm(x + row * cols, cols, gamma, beta, eps, o.p + row * cols) }
        }
    }

    /// RMSNorm as LLaMA/Qwen2 compute it: `x / sqrt(mean(x²) + eps) · gamma`.
    package static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                               gamma: UnsafePointer<Float>, eps: Float,
                               into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        guard rows > 0, cols > 0 else { return }
        let o = SendablePointer(out)
        VectorKernels.forEachRange(rows, threads: threads, minimumPerThread: max(1, (1 << 14) / cols)) { r in
            let rmsNorm = VectorKernels.table.rms_norm
            for row in r { rmsNorm(x + row * cols, cols, gamma, eps, o.p + row * cols) }
        }
    }
}
