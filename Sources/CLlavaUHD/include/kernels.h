#ifndef CLLAVAUHD_KERNELS_H
#define CLLAVAUHD_KERNELS_H

#include <stdint.h>

/* Vector kernels, compiled twice (kernels_avx2.c: AVX2+FMA+F16C, the library's baseline;
 * kernels_avx512.c: AVX-512 F/BW/VL/DQ) and chosen at run time from CPUID.
 *
 * Every kernel computes each output element with an arithmetic order that depends only on the
 * element's own inputs and the sizes (never on where a range starts, nor on threads), so
 * splitting the work across threads never changes a result. The two ISA variants may differ
 * in the last bits (different lane counts in reductions), except the bicubic passes, which use
 * no fused multiply-add and are bit-identical everywhere.
 *
 * Pointers need no particular alignment. Sizes are element counts. */
typedef struct luhd_kernels {
    /* "avx512" or "avx2". */
    const char *_Nonnull isa;

    /* Matrix-vector products against a row-major weight W[rows, k] stored as F32, F16 or BF16
     * (converted on the fly, accumulated in F32): for every row r in [r0, r1) and every
     * i in [0, m), y[i*ldy + r] = sum_j x[i*ldx + j] * W[r, j], summed in k-order per lane
     * (lane = j mod vector width), lanes then reduced in a fixed tree. Bandwidth-bound. */
    void (*_Nonnull matvec_f32)(const float *_Nonnull w, long k, long r0, long r1, const float *_Nonnull x,
                                long ldx, long m, float *_Nonnull y, long ldy);
    void (*_Nonnull matvec_f16)(const uint16_t *_Nonnull w, long k, long r0, long r1, const float *_Nonnull x,
                                long ldx, long m, float *_Nonnull y, long ldy);
    void (*_Nonnull matvec_bf16)(const uint16_t *_Nonnull w, long k, long r0, long r1, const float *_Nonnull x,
                                 long ldx, long m, float *_Nonnull y, long ldy);

    /* F16 / BF16 -> F32 (exact), and F32 -> F16 / BF16 rounding to nearest even (BF16: NaN stays
     * a quiet NaN with its sign; F16: overflow gives infinity). round_* replace x by the value
     * it has after a round trip through the narrow type (what `tensor.to(bfloat16)` does). */
    void (*_Nonnull widen_f16)(const uint16_t *_Nonnull src, float *_Nonnull dst, long n);
    void (*_Nonnull widen_bf16)(const uint16_t *_Nonnull src, float *_Nonnull dst, long n);
    void (*_Nonnull narrow_f16)(const float *_Nonnull src, uint16_t *_Nonnull dst, long n);
    void (*_Nonnull narrow_bf16)(const float *_Nonnull src, uint16_t *_Nonnull dst, long n);
    void (*_Nonnull round_f16)(float *_Nonnull x, long n);
    void (*_Nonnull round_bf16)(float *_Nonnull x, long n);

    /* One row of n values. LayerNorm: mean and biased variance accumulated in double (two
     * passes), y = (x - mean) * rstd * gamma + beta (beta may be NULL). RMSNorm: mean of squares
     * in double, y = (x * rstd) * gamma. x and y may be the same buffer. */
    void (*_Nonnull layer_norm)(const float *_Nonnull x, long n, const float *_Nonnull gamma,
                                const float *_Nullable beta, float eps, float *_Nonnull y);
    void (*_Nonnull rms_norm)(const float *_Nonnull x, long n, const float *_Nonnull gamma, float eps,
                              float *_Nonnull y);

    /* In place. softmax: one row, max subtracted first, exponentials summed in double, then
     * scaled by the float reciprocal of the sum; a row of only -inf becomes zeros.
     * exp / erf: elementwise (~1-2 ulp). gelu_erf: 0.5 x (1 + erf(x / sqrt 2)), with the
     * negative tail computed as 0.5 x erfc(|x| / sqrt 2) so it keeps its relative accuracy.
     * quick_gelu: x / (1 + exp(-1.702 x)). silu: x / (1 + exp(-x)).
     * silu_mul: gate = silu(gate) * up (the SwiGLU of LLaMA/Qwen2 MLPs). */
    void (*_Nonnull softmax)(float *_Nonnull x, long n);
    void (*_Nonnull exp)(float *_Nonnull x, long n);
    void (*_Nonnull erf)(float *_Nonnull x, long n);
    void (*_Nonnull gelu_erf)(float *_Nonnull x, long n);
    void (*_Nonnull quick_gelu)(float *_Nonnull x, long n);
    void (*_Nonnull silu)(float *_Nonnull x, long n);
    void (*_Nonnull silu_mul)(float *_Nonnull gate, const float *_Nonnull up, long n);

    /* Separable bicubic passes with the arithmetic of torch's CPU kernel (no FMA):
     * horizontal, for source rows y in [y0, y1):
     *   rows[y][ox][c] = (((0 + wx[4ox]*in[y][ix[4ox]][c]) + wx[4ox+1]*in[y][ix[4ox+1]][c]) + ...)
     *   over the 4 taps of each output column ox; `c` runs over `channels` contiguous values
     *   (1 for a CHW plane); `in` rows hold w pixels, `rows` rows hold ow pixels;
     * vertical, for output rows oy in [oy0, oy1):
     *   out[oy][v] = (((0 + wy[4oy]*rows[iy[4oy]][v]) + ...) for v in [0, ow*channels).
     * Indices must lie inside the input (the taps are clamped by the caller). */
    void (*_Nonnull bicubic_horizontal)(const float *_Nonnull in, long y0, long y1, long w, long channels, long ow,
                                        const int32_t *_Nonnull ix, const float *_Nonnull wx, float *_Nonnull rows);
    void (*_Nonnull bicubic_vertical)(const float *_Nonnull rows, long ow, long channels, long oy0, long oy1,
                                      const int32_t *_Nonnull iy, const float *_Nonnull wy, float *_Nonnull out);

    /* Decoding attention over a key/value cache stored as F16 or BF16 (read and widened in
     * registers; the cache is never converted as a whole): one query row against `count`
     * consecutive cached positions (a stretch of the visible ones; `CausalAttention` combines
     * the stretches) and kv_heads consecutive key/value heads, each row of the cache read as one
     * stretch (rows are `stride` elements apart; key/value head g's slice of a row starts at g*d
     * from `keys` / `values`). Query head h = g*group + t (t < group) reads head g; its query is
     * q[h*d ..< (h+1)*d]. Writes, for every query head h and j in [0, count):
     *   scores[h*count + j] = p_h[j], the softmax of s_h over the stretch (as `softmax`), with
     *     s_h[j] = scale * sum_i q_h[i] * keys[j*stride + g*d + i] (summed in i-order per lane,
     *     lanes reduced in a fixed tree, independent of count): p_h[j] = exp(s_h[j] - max[h]) *
     *     (float)(1 / sum[h]), max[h] = max_j s_h[j], sum[h] = sum_j exp(s_h[j] - max[h]) (double);
     *   y[h*d + c] = sum_j p_h[j] * values[j*stride + g*d + c] for c in [0, d), one
     *     multiply-add per row in j-order from 0 (y is overwritten).
     * scores holds kv_heads*group*count floats, max and sum kv_heads*group, y kv_heads*group*d. */
    void (*_Nonnull attention_partial_f16)(const uint16_t *_Nonnull keys, const uint16_t *_Nonnull values, long stride,
                                           long count, long d, long kv_heads, long group, const float *_Nonnull q,
                                           float scale, float *_Nonnull scores, float *_Nonnull max,
                                           double *_Nonnull sum, float *_Nonnull y);
    void (*_Nonnull attention_partial_bf16)(const uint16_t *_Nonnull keys, const uint16_t *_Nonnull values, long stride,
                                            long count, long d, long kv_heads, long group, const float *_Nonnull q,
                                            float scale, float *_Nonnull scores, float *_Nonnull max,
                                            double *_Nonnull sum, float *_Nonnull y);
} luhd_kernels;

/* The best variant this CPU runs. */
const luhd_kernels *_Nonnull luhd_kernels_best(void);
/* A specific variant, or NULL when the CPU cannot run it. */
const luhd_kernels *_Nullable luhd_kernels_avx2(void);
const luhd_kernels *_Nullable luhd_kernels_avx512(void);

#endif
