import CLlavaUHD

/// Scaled dot-product attention without a mask for one head (every query row sees every key, as
/// in the CLIP ViT): the fused AVX2 kernel of Sources/CLlavaUHD/include/full_attention.h. Per
/// group of 6 query rows it computes the scores against all keys, their softmax and the weighted
/// values in a cache-resident work buffer (keys and values packed once per call, about
/// 2 · tokens · headDim floats, in L2), instead of a `tokens × tokens` score matrix that the
/// score product writes, the softmax reads and writes, and the value product reads again.
///
/// Arithmetic per query row, whatever the other rows, threads or split of heads:
/// `s_j = scale · (q·k_j)` (one float32 fused multiply-add chain over the channels in order),
/// `e_j = exp(s_j − max s)` (the vector kernels' `softmax` exp), `l = Σ e_j` in double, and
/// `out = (Σ_j e_j v_j) · (1/l)` (fused multiply-add chains over 64 keys at a time, added in
/// order): the softmax's normalisation applied once per output instead of once per key.
package enum FullAttention {
    /// True when this CPU takes the kernel: its best vector kernels are the AVX2 ones (AVX-512
    /// CPUs keep the score product, softmax and value product through sgemm).
    package static let isAvailable = luhd_full_attention_available() != 0

    /// Whether a head of `headDim` channels runs here: the kernel is available and the head size
    /// is a positive multiple of 8.
    package static func runs(headDim: Int) -> Bool { isAvailable && headDim > 0 && headDim % 8 == 0 }

    /// Floats of the work buffer for `tokens` keys of `headDim` channels (any float-aligned
    /// buffer: the kernel aligns its parts inside).
    package static func workFloats(tokens: Int, headDim: Int) -> Int {
        (luhd_full_attention_work_bytes(tokens, headDim) + 3) / 4
    }

    /// `out[r·outStride + c] = Σ_j softmax_j(scale · q_r·k_j) · v_j[c]` for the `tokens` query
    /// rows r and channels c < `headDim`, with query r, key j and value j at `q`, `k`, `v` +
    /// row · `stride` (`headDim` floats each). `work`: `workFloats(tokens:headDim:)` floats.
    /// Only when `runs(headDim:)`; one thread (callers spread heads over threads).
    package static func run(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int,
                            tokens: Int, headDim: Int, scale: Float, out: UnsafeMutablePointer<Float>, outStride: Int,
                            work: UnsafeMutableRawPointer) {
        precondition(runs(headDim: headDim) && tokens > 0, "full attention needs AVX2 and a head size multiple of 8")
        luhd_full_attention(q, k, v, stride, tokens, headDim, scale, out, outStride, work)
    }
}
