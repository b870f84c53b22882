#if canImport(Glibc)
import Glibc
#endif

/// One pyramid level's value projection, `X = LN_kv(F·Wᵀ + b)` per pixel (SPEC §4 step 1;
/// upstream `features_{L}x_projector` then `ln_kv`, or the v1 `kv_proj`), computed so that the
/// E-wide Linear runs only on the RoIAlign samples, never on every pixel of the level.
///
/// With `W_c`, `b_c` the weight and bias centred over the E outputs and
/// `s_p = 1/√(‖W_c F_p + b_c‖²/E + eps)` the LayerNorm scale of pixel p, a pooled sample
/// `Σ_p ω_p X_p` (RoIAlign weights ω, Σω = 1) equals
/// `γ ⊙ centre(W z + b σ) + β` with `z = Σ ω_p s_p F_p` (C-wide) and `σ = Σ ω_p s_p`.
/// The per-pixel scales come either from the Gram matrix `G = W_cᵀW_c`
/// (`‖W_c F + b_c‖² = FᵀGF + 2 b_cᵀW_c F + ‖b_c‖²`, C² per pixel) or directly from `F·Wᵀ`
/// (C·E per pixel), whichever is cheaper.
final class PooledLevelProjection: @unchecked Sendable {
    /// How the per-pixel LayerNorm statistics are computed.
    enum Statistics: Sendable {
        /// From the full projection `F·Wᵀ + b` (cheaper when E ≤ C).
        case direct
        /// From the Gram matrix of the centred weight (cheaper when E > C).
        case gram
    }

    let channels: Int
    let embedDim: Int
    /// `[E, C]` F32.
    let weight: TensorView
    private let weightStorage: FloatStorage
    let bias: [Float]
    let normWeight: [Float]
    let normBias: [Float]
    let eps: Float
    let statistics: Statistics
    /// `G = W_cᵀ W_c` (`[C, C]`), `2·W_cᵀ b_c` and `‖b_c‖²`, for `.gram`.
    private let gram: FloatStorage?
    private let gramLinear: [Float]
    private let gramConstant: Float

    /// `weight` is `[E, C]` F32, `bias` E values (zeros for a Linear without bias).
    init(weight: FloatStorage, embedDim: Int, channels: Int, bias: [Float], normWeight: [Float], normBias: [Float],
         eps: Float, statistics: Statistics?, context: ComputeContext) {
        self.channels = channels
        self.embedDim = embedDim
        weightStorage = weight
        self.weight = weight.tensorView(name: "pooled level projection", shape: [embedDim, channels])
        self.bias = bias
        self.normWeight = normWeight
        self.normBias = normBias
        self.eps = eps
        let method = statistics ?? (embedDim > channels ? .gram : .direct)
        self.statistics = method
        guard method == .gram else {
            gram = nil
            gramLinear = []
            gramConstant = 0
            return
        }
        // Centre W over its E rows and b over its E entries.
        let e = embedDim, c = channels
        var mean = [Double](repeating: 0, count: c)
        for r in 0..<e { for j in 0..<c { mean[j] += Double(weight.pointer[r * c + j]) } }
        let centred = FloatStorage(count: e * c)
        for r in 0..<e { for j in 0..<c { centred.pointer[r * c + j] = Float(Double(weight.pointer[r * c + j]) - mean[j] / Double(e)) } }
        let biasMean = bias.reduce(0.0) { $0 + Double($1) } / Double(e)
        let centredBias = bias.map { Float(Double($0) - biasMean) }
        let g = FloatStorage(count: c * c)
        BLAS.sgemm(transA: true, m: c, n: c, k: e, a: centred.pointer, lda: c, b: centred.pointer, ldb: c,
                   c: g.pointer, ldc: c)
        var linear = [Double](repeating: 0, count: c)
        for r in 0..<e {
            let br = Double(centredBias[r])
            if br == 0 { continue }
            for j in 0..<c { linear[j] += br * Double(centred.pointer[r * c + j]) }
        }
        gram = g
        gramLinear = linear.map { Float(2 * $0) }
        gramConstant = Float(centredBias.reduce(0.0) { $0 + Double($1) * Double($1) })
    }

    /// `s_p = 1/√(var_p + eps)` of every pixel of a `[pixels, C]` map.
    func inverseStd(_ features: UnsafePointer<Float>, pixels: Int, context: ComputeContext) -> [Float] {
        let block = 256
        let width = statistics == .gram ? channels : embedDim
        var result = [Float](repeating: 0, count: pixels)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * width)
        defer { scratch.deallocate() }
        var p0 = 0
        while p0 < pixels {
            let n = min(block, pixels - p0)
            let rows = features + p0 * channels
            switch statistics {
            case .gram:
                BLAS.sgemm(m: n, n: channels, k: channels, a: rows, lda: channels, b: gram!.pointer, ldb: channels,
                           c: scratch, ldc: channels)
                gramLinear.withUnsafeBufferPointer { u in
                    for i in 0..<n {
                        let f = rows + i * channels
                        let q = dot(scratch + i * channels, f, channels) + dot(u.baseAddress!, f, channels) + gramConstant
                        result[p0 + i] = 1 / (max(q, 0) / Float(embedDim) + eps).squareRoot()
                    }
                }
            case .direct:
                MatMul.linear(rows, rows: n, weight: weight, into: scratch, context: context)
                for i in 0..<n {
                    let y = scratch + i * embedDim
                    var sum = 0.0
                    for j in 0..<embedDim { sum += Double(y[j] + bias[j]) }
                    let mean = sum / Double(embedDim)
                    var sq = 0.0
                    for j in 0..<embedDim { let d = Double(y[j] + bias[j]) - mean; sq += d * d }
                    result[p0 + i] = Float(1 / (sq / Double(embedDim) + Double(eps)).squareRoot())
                }
            }
            p0 += n
        }
        return result
    }

    /// The level pooled in C-wide form: `z` (`[samples, C]`) and `σ` (`[samples]`) for the
    /// windows of `layout`, from a `[height, width, C]` map.
    func pool(_ features: UnsafePointer<Float>, layout: WindowLayout, context: ComputeContext) -> (z: [Float], sigma: [Float]) {
        let pixels = layout.height * layout.width
        let scales = inverseStd(features, pixels: pixels, context: context)
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
        return (z, sigma)
    }

    /// Pooled values `V = γ ⊙ centre(z·Wᵀ + σ·b) + β` of `count` samples, into `out`
    /// (`[count, E]`).
    func values(z: UnsafePointer<Float>, sigma: UnsafePointer<Float>, count: Int,
                into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        MatMul.linear(z, rows: count, weight: weight, into: out, context: context)
        let e = embedDim
        for s in 0..<count {
            let row = out + s * e
            let sg = sigma[s]
            var sum = 0.0
            for j in 0..<e { row[j] += sg * bias[j]; sum += Double(row[j]) }
            let mean = Float(sum / Double(e))
            for j in 0..<e { row[j] = (row[j] - mean) * normWeight[j] + normBias[j] }
        }
    }
}
