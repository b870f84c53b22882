/* The bodies of the vector kernels (see include/kernels.h), written once against a small
 * vector vocabulary that kernels_avx2.c and kernels_avx512.c define before including this file:
 *
 *   W, vf (W floats), vi (W int32), vmask, vd (W/2 doubles), KFN(name), MATVEC_ROWS(m)
 *   v_zero v_set v_load v_load_n v_load_n_fill v_store v_store_n
 *   v_load_bf16(_n) v_load_f16(_n) v_store_bf16(_n) v_store_f16(_n) v_round_bf16 v_round_f16
 *   v_add v_sub v_mul v_div v_fma(a,b,c)=a*b+c v_min(bound,x) v_max(bound,x) (NaN x stays NaN)
 *   v_abs v_neg v_copysign v_round v_lt v_blend(m,a,b)=m?b:a v_hsum v_hsum4_scaled v_hmax v_lookup8
 *   v_cvtt_i v_i_min7 v_scale_pow2(x, n) = x * 2^n for integer-valued n in [-150, 129], one rounding
 *   vd_zero vd_add_halves vd_add_sq_dev_halves vd_hsum
 *
 * Each function here becomes KFN(name), e.g. luhd_avx512_softmax. */

#include "kernel_polynomials.h"
#include <math.h>
#include <stddef.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* The matrix-vector kernels prefetch each weight row this many bytes ahead in software: the
 * hardware prefetchers stop at page ends, and BF16 weights are read from the file mapping, mostly
 * in 4 KiB pages (without it: 8-27 % slower per thread CPU second, decode-kernels on Zen 4).
 * Decode attention over a 16-bit cache issues none: the cache sits in 2 MiB pages, and one
 * prefetch per cache line cost more than it gained (+30-40 % without, BENCHMARKS.md,
 * notes:decode5). */
#define MATVEC_PREFETCH_BYTES 512

/* ------------------------------------------------------------------------------------------ */
/* Elementary functions                                                                        */

INLINE vf horner(const float *c, int count, vf t) {
    vf p = v_set(c[0]);
    for (int i = 1; i < count; i++) p = v_fma(p, t, v_set(c[i]));
    return p;
}

/* exp(x): n = round(x / ln2), r = x - n ln2 (two-part ln2), exp(r) = 1 + r + r^2 P(r), then
 * times 2^n with one rounding (v_scale_pow2), so that results that over- or underflow
 * (x > 88.7, x < -87.3: inf, subnormals, 0) come out right. */
INLINE vf k_exp(vf x) {
    x = v_max(v_set(-104.0f), v_min(v_set(89.0f), x));
    vf n = v_round(v_mul(x, v_set(1.44269504088896341f)));
    vf r = v_fma(n, v_set(-0.693145751953125f), x);
    r = v_fma(n, v_set(-1.42860682030941723e-06f), r);
    vf e = v_add(v_fma(horner(luhd_exp_p, 6, r), v_mul(r, r), r), v_set(1.0f));
    return v_scale_pow2(e, n);
}

/* exp(-s * a^2) for s = 1 or 0.5, with a^2 split exactly into hi + lo (FMA), so the rounding
 * of a^2 does not cost relative accuracy: exp(-s hi) * (1 - s lo). */
INLINE vf k_exp_neg_square(vf a, float s) {
    vf hi = v_mul(a, a);
    vf lo = v_fma(a, a, v_neg(hi));
    vf e = k_exp(v_mul(v_set(-s), hi));
    return v_mul(e, v_fma(v_set(-s), lo, v_set(1.0f)));
}

/* erf(z) for |z| < 0.5: c0 z + z^3 B(z^2), the small correction added last (by FMA) so that
 * its rounding errors are scaled down. */
INLINE vf k_erf_small(vf z) {
    vf u = v_mul(z, z);
    vf corr = v_mul(v_mul(z, u), horner(luhd_erf_b, 5, u));
    return v_fma(z, v_set(luhd_erf_c0_hi), v_fma(z, v_set(luhd_erf_c0_lo), corr));
}

/* erfc(a) exp(a^2) for a >= 0.5 (a is clamped to [0.5, 10]): piecewise polynomials in a on
 * [0.5, 4), a polynomial in 1/a^2 (divided by a) on [4, 10]. */
INLINE vf k_erfcx(vf a) {
    a = v_max(v_set(0.5f), v_min(v_set(10.0f), a));
    vi idx = v_i_min7(v_cvtt_i(v_mul(v_sub(a, v_set(0.5f)), v_set(2.0f))));
    vf t = v_sub(a, v_lookup8(luhd_erfc_center, idx));
    vf q = v_lookup8(luhd_erfc_q[0], idx);
    for (int k = 1; k < 9; k++) q = v_fma(q, t, v_lookup8(luhd_erfc_q[k], idx));
    vf r = v_div(v_set(1.0f), a);
    vf tail = v_mul(horner(luhd_erfc_tail, 5, v_mul(r, r)), r);
    return v_blend(v_lt(a, v_set(4.0f)), tail, q);
}

INLINE vf k_erf(vf z) {
    vf a = v_abs(z);
    vf ac = v_max(v_set(0.5f), v_min(v_set(10.0f), a));
    vf erfc = v_mul(k_exp_neg_square(ac, 1.0f), k_erfcx(ac));
    vf big = v_copysign(v_sub(v_set(1.0f), erfc), z);
    return v_blend(v_lt(a, v_set(0.5f)), big, k_erf_small(z));
}

/* 0.5 x (1 + erf(x / sqrt 2)). For |z| = |x / sqrt 2| >= 0.5, 1 + erf(z) is erfc(|z|) (x < 0)
 * or 2 - erfc(|z|) (x > 0), with exp(-x^2 / 2) taken from x itself rather than from the
 * rounded z, so the negative tail keeps its relative accuracy. */
INLINE vf k_gelu(vf x) {
    vf z = v_mul(x, v_set(0.707106781186547524f));
    vf a = v_abs(z);
    vf h_small = v_add(v_set(1.0f), k_erf_small(z));
    vf xa = v_max(v_set(0.707106781f), v_min(v_set(15.0f), v_abs(x)));
    vf erfc = v_mul(k_exp_neg_square(xa, 0.5f), k_erfcx(a));
    vf h_big = v_blend(v_lt(x, v_zero()), v_sub(v_set(2.0f), erfc), erfc);
    vf h = v_blend(v_lt(a, v_set(0.5f)), h_big, h_small);
    return v_mul(v_mul(v_set(0.5f), x), h);
}

/* x sigmoid(t) = x e / (1 + e) with e = exp(-|t|), taking the numerator e for t < 0 and 1 for
 * t >= 0, so that neither tail overflows or loses its relative accuracy. */
INLINE vf k_x_sigmoid(vf x, vf t) {
    vf e = k_exp(v_neg(v_abs(t)));
    vf num = v_blend(v_lt(t, v_zero()), v_set(1.0f), e);
    return v_div(v_mul(x, num), v_add(v_set(1.0f), e));
}

INLINE vf k_silu(vf x) { return k_x_sigmoid(x, x); }

INLINE vf k_quick_gelu(vf x) { return k_x_sigmoid(x, v_mul(v_set(1.702f), x)); }

/* Applies an elementwise function in place, the tail with masked loads so every element goes
 * through exactly the same arithmetic. */
#define ELEMENTWISE(name, fn)                                                                 \
    static void KFN(name)(float *x, long n) {                                                        \
        long i = 0;                                                                           \
        for (; i + W <= n; i += W) v_store(x + i, fn(v_load(x + i)));                         \
        if (i < n) v_store_n(x + i, fn(v_load_n(x + i, n - i)), n - i);                       \
    }

ELEMENTWISE(exp, k_exp)
ELEMENTWISE(erf, k_erf)
ELEMENTWISE(gelu_erf, k_gelu)
ELEMENTWISE(silu, k_silu)
ELEMENTWISE(quick_gelu, k_quick_gelu)

static void KFN(silu_mul)(float *gate, const float *up, long n) {
    long i = 0;
    for (; i + W <= n; i += W) v_store(gate + i, v_mul(k_silu(v_load(gate + i)), v_load(up + i)));
    if (i < n) v_store_n(gate + i, v_mul(k_silu(v_load_n(gate + i, n - i)), v_load_n(up + i, n - i)), n - i);
}

/* ------------------------------------------------------------------------------------------ */
/* Softmax and normalisation (one row)                                                         */

/* Softmax of x in place (n >= 1): x[i] = exp(x[i] - max) * (float)(1 / sum) with max the largest
 * x and sum the sum of the exponentials (double lanes, so its rounding does not add to the
 * error); stores max and returns sum. All x -inf: x becomes 0, max -inf, returns 0. */
INLINE double softmax_stats(float *x, long n, float *max) {
    vf mv = v_set(-INFINITY);
    long i = 0;
    for (; i + W <= n; i += W) mv = v_max(mv, v_load(x + i));
    if (i < n) mv = v_max(mv, v_load_n_fill(x + i, n - i, -INFINITY));
    float m = v_hmax(mv);
    *max = m;
    if (m == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof(float));
        return 0;
    }
    vf vm = v_set(m);
    vd s0 = vd_zero(), s1 = vd_zero();
    for (i = 0; i + W <= n; i += W) {
        vf e = k_exp(v_sub(v_load(x + i), vm));
        v_store(x + i, e);
        vd_add_halves(&s0, &s1, e);
    }
    if (i < n) {
        vf e = k_exp(v_sub(v_load_n_fill(x + i, n - i, -INFINITY), vm));   /* exp(-inf) = 0 */
        v_store_n(x + i, e, n - i);
        vd_add_halves(&s0, &s1, e);
    }
    double sum = vd_hsum(s0, s1);
    vf inv = v_set((float)(1.0 / sum));
    for (i = 0; i + W <= n; i += W) v_store(x + i, v_mul(v_load(x + i), inv));
    if (i < n) v_store_n(x + i, v_mul(v_load_n(x + i, n - i), inv), n - i);
    return sum;
}

static void KFN(softmax)(float *x, long n) {
    float m;
    if (n > 0) softmax_stats(x, n, &m);
}

/* Sum of x (double lanes, then the tail in order). */
static double row_sum(const float *x, long n) {
    vd s0 = vd_zero(), s1 = vd_zero();
    long i = 0;
    for (; i + W <= n; i += W) vd_add_halves(&s0, &s1, v_load(x + i));
    double s = vd_hsum(s0, s1);
    for (; i < n; i++) s += (double)x[i];
    return s;
}

/* Sum of (x - mean)^2 (double lanes, then the tail in order). */
static double row_sum_sq_dev(const float *x, long n, double mean) {
    vd s0 = vd_zero(), s1 = vd_zero();
    long i = 0;
    for (; i + W <= n; i += W) vd_add_sq_dev_halves(&s0, &s1, v_load(x + i), mean);
    double s = vd_hsum(s0, s1);
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        s += d * d;
    }
    return s;
}

static void KFN(layer_norm)(const float *x, long n, const float *gamma, const float *beta, float eps, float *y) {
    if (n <= 0) return;
    double mean = row_sum(x, n) / (double)n;
    double var = row_sum_sq_dev(x, n, mean) / (double)n;
    vf m = v_set((float)mean), s = v_set((float)(1.0 / sqrt(var + (double)eps)));
    long i = 0;
    if (beta) {
        for (; i + W <= n; i += W)
            v_store(y + i, v_fma(v_mul(v_sub(v_load(x + i), m), s), v_load(gamma + i), v_load(beta + i)));
        if (i < n)
            v_store_n(y + i, v_fma(v_mul(v_sub(v_load_n(x + i, n - i), m), s), v_load_n(gamma + i, n - i),
                                   v_load_n(beta + i, n - i)), n - i);
    } else {
        for (; i + W <= n; i += W) v_store(y + i, v_mul(v_mul(v_sub(v_load(x + i), m), s), v_load(gamma + i)));
        if (i < n)
            v_store_n(y + i, v_mul(v_mul(v_sub(v_load_n(x + i, n - i), m), s), v_load_n(gamma + i, n - i)), n - i);
    }
}

static void KFN(rms_norm)(const float *x, long n, const float *gamma, float eps, float *y) {
    if (n <= 0) return;
    double ms = row_sum_sq_dev(x, n, 0.0) / (double)n;
    vf s = v_set((float)(1.0 / sqrt(ms + (double)eps)));
    long i = 0;
    for (; i + W <= n; i += W) v_store(y + i, v_mul(v_mul(v_load(x + i), s), v_load(gamma + i)));
    if (i < n) v_store_n(y + i, v_mul(v_mul(v_load_n(x + i, n - i), s), v_load_n(gamma + i, n - i)), n - i);
}

/* ------------------------------------------------------------------------------------------ */
/* Float conversions                                                                           */

static void KFN(widen_bf16)(const uint16_t *src, float *dst, long n) {
    long i = 0;
    for (; i + W <= n; i += W) v_store(dst + i, v_load_bf16(src + i));
    if (i < n) v_store_n(dst + i, v_load_bf16_n(src + i, n - i), n - i);
}

static void KFN(widen_f16)(const uint16_t *src, float *dst, long n) {
    long i = 0;
    for (; i + W <= n; i += W) v_store(dst + i, v_load_f16(src + i));
    if (i < n) v_store_n(dst + i, v_load_f16_n(src + i, n - i), n - i);
}

static void KFN(narrow_bf16)(const float *src, uint16_t *dst, long n) {
    long i = 0;
    for (; i + W <= n; i += W) v_store_bf16(dst + i, v_load(src + i));
    if (i < n) v_store_bf16_n(dst + i, v_load_n(src + i, n - i), n - i);
}

static void KFN(narrow_f16)(const float *src, uint16_t *dst, long n) {
    long i = 0;
    for (; i + W <= n; i += W) v_store_f16(dst + i, v_load(src + i));
    if (i < n) v_store_f16_n(dst + i, v_load_n(src + i, n - i), n - i);
}

ELEMENTWISE(round_bf16, v_round_bf16)
ELEMENTWISE(round_f16, v_round_f16)

/* ------------------------------------------------------------------------------------------ */
/* Matrix-vector products                                                                      */

/* One block of R weight rows (starting at row r) against V input vectors: one accumulator per
 * (row, vector), so a row's sum is formed the same way whatever R and V are. R is chosen per
 * ISA and number of vectors (MATVEC_ROWS) so the R·V accumulators fit in registers; 8 rows
 * give one vector (decoding) more independent memory streams. */
#define MATVEC_BLOCK(T, LOAD_W, LOAD_W_N)                                                       \
    INLINE void mv_block_##T(const T *w, long k, long r, const int R, const float *x, long ldx, \
                             const int V, float *y, long ldy) {                                  \
        vf acc[8][4];                                                                           \
        for (int a = 0; a < R; a++)                                                             \
            for (int b = 0; b < V; b++) acc[a][b] = v_zero();                                   \
        const T *wr[8];                                                                         \
        for (int a = 0; a < R; a++) wr[a] = w + (r + a) * k;                                    \
        long j = 0;                                                                             \
        const long line = 64 / (long)sizeof(T), pf = MATVEC_PREFETCH_BYTES / (long)sizeof(T);  \
        for (; j + W <= k; j += W) {                                                            \
            vf wv[8];                                                                           \
            if ((j & (line - 1)) == 0)                                                          \
                for (int a = 0; a < R; a++) _mm_prefetch((const char *)(wr[a] + j + pf), _MM_HINT_T0); \
            for (int a = 0; a < R; a++) wv[a] = LOAD_W(wr[a] + j);                              \
            for (int b = 0; b < V; b++) {                                                       \
                vf xv = v_load(x + b * ldx + j);                                                \
                for (int a = 0; a < R; a++) acc[a][b] = v_fma(wv[a], xv, acc[a][b]);            \
            }                                                                                   \
        }                                                                                       \
        if (j < k) {                                                                            \
            long t = k - j;                                                                     \
            vf wv[8];                                                                           \
            for (int a = 0; a < R; a++) wv[a] = LOAD_W_N(wr[a] + j, t);                         \
            for (int b = 0; b < V; b++) {                                                       \
                vf xv = v_load_n(x + b * ldx + j, t);                                           \
                for (int a = 0; a < R; a++) acc[a][b] = v_fma(wv[a], xv, acc[a][b]);            \
            }                                                                                   \
        }                                                                                       \
        for (int a = 0; a < R; a++)                                                             \
            for (int b = 0; b < V; b++) y[b * ldy + r + a] = v_hsum(acc[a][b]);                 \
    }

#define MATVEC_CALLS(T, R)                                                                      \
    switch (v) {                                                                                \
    case 1: mv_block_##T(w, k, r, R, xi, ldx, 1, yi, ldy); break;                               \
    case 2: mv_block_##T(w, k, r, R, xi, ldx, 2, yi, ldy); break;                               \
    case 3: mv_block_##T(w, k, r, R, xi, ldx, 3, yi, ldy); break;                               \
    default: mv_block_##T(w, k, r, R, xi, ldx, 4, yi, ldy); break;                              \
    }

#define MATVEC(T, name)                                                                         \
    static void KFN(name)(const T *w, long k, long r0, long r1, const float *x, long ldx, long m, \
                          float *y, long ldy) {                                                 \
        const int rb = MATVEC_ROWS(m);                                                          \
        long r = r0;                                                                            \
        while (r < r1) {                                                                        \
            long left = r1 - r;                                                                 \
            int rows = left >= rb ? rb : left >= 4 && rb >= 4 ? 4 : left >= 2 && rb >= 2 ? 2 : 1; \
            for (long i = 0; i < m; i += 4) {                                                   \
                long v = m - i < 4 ? m - i : 4;                                                 \
                const float *xi = x + i * ldx;                                                  \
                float *yi = y + i * ldy;                                                        \
                if (rows == 8) {                                                                \
                    MATVEC_CALLS(T, 8)                                                          \
                } else if (rows == 4) {                                                         \
                    MATVEC_CALLS(T, 4)                                                          \
                } else if (rows == 2) {                                                         \
                    MATVEC_CALLS(T, 2)                                                          \
                } else {                                                                        \
                    MATVEC_CALLS(T, 1)                                                          \
                }                                                                               \
            }                                                                                   \
            r += rows;                                                                          \
        }                                                                                       \
    }

typedef float f32_t;
typedef uint16_t f16_t;
typedef uint16_t bf16_t;
MATVEC_BLOCK(f32_t, v_load, v_load_n)
MATVEC_BLOCK(f16_t, v_load_f16, v_load_f16_n)
MATVEC_BLOCK(bf16_t, v_load_bf16, v_load_bf16_n)
MATVEC(f32_t, matvec_f32)
MATVEC(f16_t, matvec_f16)
MATVEC(bf16_t, matvec_bf16)

/* ------------------------------------------------------------------------------------------ */
/* Attention over 16-bit cached keys and values (converted in registers)                       */

/* Scores of R cached key rows (stride apart) against one query: one accumulator per row over
 * the d values in order, so a row's score does not depend on R. */
#define ATTENTION_SCORE_BLOCK(T, LOAD_K, LOAD_K_N)                                              \
    INLINE void att_scores_##T(const T *keys, long stride, long d, const float *q, float scale, \
                               const int R, float *out) {                                       \
        vf acc[4];                                                                              \
        for (int a = 0; a < R; a++) acc[a] = v_zero();                                          \
        long i = 0;                                                                             \
        for (; i + W <= d; i += W) {                                                            \
            vf qv = v_load(q + i);                                                              \
            for (int a = 0; a < R; a++) acc[a] = v_fma(LOAD_K(keys + a * stride + i), qv, acc[a]); \
        }                                                                                       \
        if (i < d) {                                                                            \
            vf qv = v_load_n(q + i, d - i);                                                     \
            for (int a = 0; a < R; a++) acc[a] = v_fma(LOAD_K_N(keys + a * stride + i, d - i), qv, acc[a]); \
        }                                                                                       \
        if (R == 4) v_hsum4_scaled(acc[0], acc[1], acc[2], acc[3], scale, out);                 \
        else for (int a = 0; a < R; a++) out[a] = v_hsum(acc[a]) * scale;                       \
    }                                                                                           \
    static void KFN(attention_scores_##T)(const T *keys, long stride, long count, long d, long kv_heads, \
                                          long group, const float *q, float scale, float *scores, \
                                          long score_stride) {                                  \
        long j = 0;                                                                             \
        for (; j + 4 <= count; j += 4) {                                                        \
            for (long g = 0; g < kv_heads; g++)                                                 \
                for (long h = g * group; h < (g + 1) * group; h++)                              \
                    att_scores_##T(keys + j * stride + g * d, stride, d, q + h * d, scale, 4,   \
                                   scores + h * score_stride + j);                              \
        }                                                                                       \
        for (; j < count; j++)                                                                  \
            for (long g = 0; g < kv_heads; g++)                                                 \
                for (long h = g * group; h < (g + 1) * group; h++)                              \
                    att_scores_##T(keys + j * stride + g * d, stride, d, q + h * d, scale, 1,   \
                                   scores + h * score_stride + j);                              \
    }

/* y_h[c] = sum over j in order of p_h[j] * values[j][g][c] (query head h = g * group + t reads
 * key/value head g), one multiply-add per row and element from y_h = 0, the rows streamed once
 * (all kv_heads slices of a row together, 4 rows per pass over the outputs). */
#define ATTENTION_VALUES(T, LOAD_V, LOAD_V_N)                                                   \
    INLINE void att_values_##T(const T *rows, long stride, long d, long kv_heads, long group,   \
                               const float *p, long p_stride, float *y, const int R) {          \
        for (long g = 0; g < kv_heads; g++) {                                                   \
            const T *row = rows + g * d;                                                        \
            for (long c = 0; c < d; c += W) {                                                   \
                const long left = d - c;                                                        \
                vf x[4];                                                                        \
                for (int a = 0; a < R; a++)                                                     \
                    x[a] = left >= W ? LOAD_V(row + a * stride + c) : LOAD_V_N(row + a * stride + c, left); \
                for (long h = g * group; h < (g + 1) * group; h++) {                            \
                    float *yh = y + h * d + c;                                                  \
                    const float *ph = p + h * p_stride;                                         \
                    vf acc = left >= W ? v_load(yh) : v_load_n(yh, left);                       \
                    for (int a = 0; a < R; a++) acc = v_fma(v_set(ph[a]), x[a], acc);           \
                    if (left >= W) v_store(yh, acc);                                            \
                    else v_store_n(yh, acc, left);                                              \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    static void KFN(attention_values_##T)(const T *values, long stride, long count, long d, long kv_heads, \
                                          long group, const float *p, long p_stride, float *y) { \
        memset(y, 0, sizeof(float) * (size_t)(kv_heads * group * d));                          \
        long j = 0;                                                                             \
        for (; j + 4 <= count; j += 4) {                                                        \
            att_values_##T(values + j * stride, stride, d, kv_heads, group, p + j, p_stride, y, 4); \
        }                                                                                       \
        for (; j < count; j++) att_values_##T(values + j * stride, stride, d, kv_heads, group, p + j, p_stride, y, 1); \
    }

/* One stretch of cached positions for all the given heads (see include/kernels.h): scores,
 * their softmax over the stretch per query head, and the values weighted by it, each row of the
 * stretch read whole (all heads' slices) by each pass. */
#define ATTENTION_PARTIAL(T)                                                                    \
    static void KFN(attention_partial_##T)(const T *keys, const T *values, long stride, long count, long d, \
                                           long kv_heads, long group, const float *q, float scale, \
                                           float *scores, float *max, double *sum, float *y) {  \
        KFN(attention_scores_##T)(keys, stride, count, d, kv_heads, group, q, scale, scores, count); \
        for (long h = 0; h < kv_heads * group; h++)                                             \
            sum[h] = softmax_stats(scores + h * count, count, max + h);                         \
        KFN(attention_values_##T)(values, stride, count, d, kv_heads, group, scores, count, y); \
    }

ATTENTION_SCORE_BLOCK(f16_t, v_load_f16, v_load_f16_n)
ATTENTION_SCORE_BLOCK(bf16_t, v_load_bf16, v_load_bf16_n)
ATTENTION_VALUES(f16_t, v_load_f16, v_load_f16_n)
ATTENTION_VALUES(bf16_t, v_load_bf16, v_load_bf16_n)
ATTENTION_PARTIAL(f16_t)
ATTENTION_PARTIAL(bf16_t)

/* ------------------------------------------------------------------------------------------ */
/* Bicubic passes: products and sums in torch's order, never fused.                            */

static void KFN(bicubic_horizontal)(const float *in, long y0, long y1, long w, long channels, long ow,
                             const int32_t *ix, const float *wx, float *rows) {
#pragma clang fp contract(off)
    for (long y = y0; y < y1; y++) {
        const float *src = in + y * w * channels;
        float *dst = rows + y * ow * channels;
        if (channels == 1) {
            for (long ox = 0; ox < ow; ox++) {
                const int32_t *t = ix + 4 * ox;
                const float *c = wx + 4 * ox;
                float acc = 0.0f;
                acc = acc + c[0] * src[t[0]];
                acc = acc + c[1] * src[t[1]];
                acc = acc + c[2] * src[t[2]];
                acc = acc + c[3] * src[t[3]];
                dst[ox] = acc;
            }
            continue;
        }
        for (long ox = 0; ox < ow; ox++) {
            const float *s0 = src + ix[4 * ox] * channels, *s1 = src + ix[4 * ox + 1] * channels;
            const float *s2 = src + ix[4 * ox + 2] * channels, *s3 = src + ix[4 * ox + 3] * channels;
            vf c0 = v_set(wx[4 * ox]), c1 = v_set(wx[4 * ox + 1]), c2 = v_set(wx[4 * ox + 2]), c3 = v_set(wx[4 * ox + 3]);
            float *d = dst + ox * channels;
            long c = 0;
            for (; c + W <= channels; c += W) {
                vf acc = v_add(v_zero(), v_mul(c0, v_load(s0 + c)));
                acc = v_add(acc, v_mul(c1, v_load(s1 + c)));
                acc = v_add(acc, v_mul(c2, v_load(s2 + c)));
                acc = v_add(acc, v_mul(c3, v_load(s3 + c)));
                v_store(d + c, acc);
            }
            if (c < channels) {
                long t = channels - c;
                vf acc = v_add(v_zero(), v_mul(c0, v_load_n(s0 + c, t)));
                acc = v_add(acc, v_mul(c1, v_load_n(s1 + c, t)));
                acc = v_add(acc, v_mul(c2, v_load_n(s2 + c, t)));
                acc = v_add(acc, v_mul(c3, v_load_n(s3 + c, t)));
                v_store_n(d + c, acc, t);
            }
        }
    }
}

static void KFN(bicubic_vertical)(const float *rows, long ow, long channels, long oy0, long oy1,
                                  const int32_t *iy, const float *wy, float *out) {
#pragma clang fp contract(off)
    long len = ow * channels;
    /* Column chunks outermost, so the source rows' chunks stay in cache across output rows. */
    const long chunk = 1024;
    for (long v0 = 0; v0 < len; v0 += chunk) {
        long v1 = v0 + chunk < len ? v0 + chunk : len;
        for (long oy = oy0; oy < oy1; oy++) {
            const float *r0 = rows + iy[4 * oy] * len, *r1 = rows + iy[4 * oy + 1] * len;
            const float *r2 = rows + iy[4 * oy + 2] * len, *r3 = rows + iy[4 * oy + 3] * len;
            vf c0 = v_set(wy[4 * oy]), c1 = v_set(wy[4 * oy + 1]), c2 = v_set(wy[4 * oy + 2]), c3 = v_set(wy[4 * oy + 3]);
            float *d = out + oy * len;
            long v = v0;
            for (; v + W <= v1; v += W) {
                vf acc = v_add(v_zero(), v_mul(c0, v_load(r0 + v)));
                acc = v_add(acc, v_mul(c1, v_load(r1 + v)));
                acc = v_add(acc, v_mul(c2, v_load(r2 + v)));
                acc = v_add(acc, v_mul(c3, v_load(r3 + v)));
                v_store(d + v, acc);
            }
            if (v < v1) {
                long t = v1 - v;
                vf acc = v_add(v_zero(), v_mul(c0, v_load_n(r0 + v, t)));
                acc = v_add(acc, v_mul(c1, v_load_n(r1 + v, t)));
                acc = v_add(acc, v_mul(c2, v_load_n(r2 + v, t)));
                acc = v_add(acc, v_mul(c3, v_load_n(r3 + v, t)));
                v_store_n(d + v, acc, t);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */

static const luhd_kernels KFN(table_value) = {
    .isa = ISA_NAME,
    .matvec_f32 = KFN(matvec_f32),
    .matvec_f16 = KFN(matvec_f16),
    .matvec_bf16 = KFN(matvec_bf16),
    .widen_f16 = KFN(widen_f16),
    .widen_bf16 = KFN(widen_bf16),
    .narrow_f16 = KFN(narrow_f16),
    .narrow_bf16 = KFN(narrow_bf16),
    .round_f16 = KFN(round_f16),
    .round_bf16 = KFN(round_bf16),
    .layer_norm = KFN(layer_norm),
    .rms_norm = KFN(rms_norm),
    .softmax = KFN(softmax),
    .exp = KFN(exp),
    .erf = KFN(erf),
    .gelu_erf = KFN(gelu_erf),
    .quick_gelu = KFN(quick_gelu),
    .silu = KFN(silu),
    .silu_mul = KFN(silu_mul),
    .bicubic_horizontal = KFN(bicubic_horizontal),
    .bicubic_vertical = KFN(bicubic_vertical),
    .attention_partial_f16 = KFN(attention_partial_f16_t),
    .attention_partial_bf16 = KFN(attention_partial_bf16_t),
};

const luhd_kernels *KFN(table)(void) { return &KFN(table_value); }
