#if canImport(Glibc)
import Glibc
#endif

/// Rotary position embedding (RoPE) as Hugging Face LLaMA and Qwen2 apply it: the
/// "rotate_half" convention, where dimension i of a head (i < d/2) is paired with i + d/2:
///
///     out[i]       = x[i]·cos(p·ω_i) − x[i+d/2]·sin(p·ω_i)
///     out[i + d/2] = x[i+d/2]·cos(p·ω_i) + x[i]·sin(p·ω_i)
///
/// with ω_i = 1 / θ^(2i/d). The tables follow transformers' float32 arithmetic
/// (`LlamaRotaryEmbedding`, 4.37 and 5.x alike): the exponent 2i/d and ω_i are float32
/// (`1.0 / base ** (arange(0, d, 2).float() / d)`), the angle is the float32 product p·ω_i,
/// and its cosine and sine are rounded to float32. θ^e is computed in double and rounded,
/// which equals torch's float32 `pow` except for rare near-ties (1 ulp: one of the 64
/// frequencies of d = 128, θ = 10⁶); cos/sin are within 1 ulp of torch's.
package struct RotaryEmbedding: Sendable {
    /// Width of one attention head (even).
    package let headDim: Int
    /// The base θ (`rope_theta`).
    package let theta: Float
    /// ω_i for i in 0..<headDim/2, float32.
    package let inverseFrequencies: [Float]

    /// Throws `.invalidArgument` unless `headDim` is positive and even and `theta` > 1.
    package init(headDim: Int, theta: Float) throws(LlavaError) {
        guard headDim > 0, headDim % 2 == 0 else {
            throw LlavaError(.invalidArgument, "rotary embedding head width \(headDim) must be positive and even")
        }
        guard theta > 1, theta.isFinite else {
            throw LlavaError(.invalidArgument, "rotary embedding base θ = \(theta) must be a finite number above 1")
        }
        self.headDim = headDim
        self.theta = theta
        let half = headDim / 2
        inverseFrequencies = (0..<half).map { i in
            let exponent = Float(2 * i) / Float(headDim)
            let power = Float(pow(Double(theta), Double(exponent)))
            return 1 / power
        }
    }

    /// cos and sin of p·ω_i for the positions `positions`, each `[positions.count × headDim/2]`
    /// row-major (one row per position).
    package func tables(positions: Range<Int>) -> (cos: [Float], sin: [Float]) {
        let half = headDim / 2
        var c = [Float](repeating: 0, count: positions.count * half)
        var s = [Float](repeating: 0, count: positions.count * half)
        for (r, p) in positions.enumerated() {
            let position = Float(p)
            for i in 0..<half {
                let angle = Double(position * inverseFrequencies[i])
                c[r * half + i] = Float(cos(angle))
                s[r * half + i] = Float(sin(angle))
            }
        }
        return (c, s)
    }

    /// Rotates, in place, `rows` rows of `heads` heads each (head h of row r starts at
    /// `x + r·rowStride + h·headDim`); row r uses row r of the tables.
    package func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, rowStride: Int,
                      cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, threads: Int = 1) {
        let half = headDim / 2, d = headDim
        let data = SendablePointer(x)
        let parts = chunks(rows, parts: rows >= 16 ? threads : 1)
        parallelFor(parts.count, threads: threads) { part in
            for r in parts[part] {
                let c = cos + r * half, s = sin + r * half
                for h in 0..<heads {
                    let v = data.p + r * rowStride + h * d
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        let ca = a * c[i], sb = b * s[i]
                        let cb = b * c[i], sa = a * s[i]
                        v[i] = ca - sb
                        v[i + half] = cb + sa
                    }
                }
            }
        }
    }
}
