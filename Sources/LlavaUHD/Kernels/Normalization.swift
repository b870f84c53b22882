#if canImport(Glibc)
import Glibc
#endif

/// Row-wise normalisations over the last dimension of a row-major `[rows, cols]` matrix.
/// Statistics are accumulated in Double so the result does not depend on the row length's
/// rounding behaviour; `x` and `out` may be the same buffer.
public enum Normalization {
    /// LayerNorm: `(x − mean) / sqrt(var + eps) · gamma + beta` (biased variance, as PyTorch).
    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?, eps: Float,
                                 into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let o = SendablePointer(out)
        let parts = chunks(rows, parts: rows >= 64 ? threads : 1)
        parallelFor(parts.count, threads: threads) { p in
            for r in parts[p] {
                let xr = x + r * cols, yr = o.p + r * cols
                var sum = 0.0
                for j in 0..<cols { sum += Double(xr[j]) }
                let mean = sum / Double(cols)
                var sq = 0.0
                for j in 0..<cols { let d = Double(xr[j]) - mean; sq += d * d }
                let inv = 1.0 / (sq / Double(cols) + Double(eps)).squareRoot()
                let m = Float(mean), s = Float(inv)
                if let beta {
                    for j in 0..<cols { yr[j] = (xr[j] - m) * s * gamma[j] + beta[j] }
                } else {
                    for j in 0..<cols { yr[j] = (xr[j] - m) * s * gamma[j] }
                }
            }
        }
    }

    /// RMSNorm as LLaMA/Qwen2 compute it: `x / sqrt(mean(x²) + eps) · gamma`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                               gamma: UnsafePointer<Float>, eps: Float,
                               into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let o = SendablePointer(out)
        let parts = chunks(rows, parts: rows >= 64 ? threads : 1)
        parallelFor(parts.count, threads: threads) { p in
            for r in parts[p] {
                let xr = x + r * cols, yr = o.p + r * cols
                var sq = 0.0
                for j in 0..<cols { sq += Double(xr[j]) * Double(xr[j]) }
                let s = Float(1.0 / (sq / Double(cols) + Double(eps)).squareRoot())
                for j in 0..<cols { yr[j] = (xr[j] * s) * gamma[j] }
            }
        }
    }
}
