/* The unmasked attention kernel (include/full_attention.h), included by kernels_avx2.c after
 * kernels_simd.h, whose exp (k_exp, the `softmax` kernel's) and AVX2 vocabulary it uses.
 *
 * Layout, per call (one head): the keys are packed transposed in panels of 16, kp[p][c][t] =
 * k_{16p+t}[c] (zero past n), and the values in column slices of 16 (8 for a last odd slice),
 * vp[s][j][c'] = v_j[16s + c']. Then per group of ROWS = 6 query rows:
 *   scores: 6 rows x 16 keys per micro-tile, two key vectors and six broadcast query values per
 *     step over c (12 fused multiply-adds in 12 accumulators), into s[6][n16], each row's
 *     maximum kept on the way;
 *   each row's exponentials exp(s - max) in place and (float)(1 / their sum);
 *   values: 6 rows x 16 channels per micro-tile, two value vectors and six broadcast
 *     exponentials per key (12 fused multiply-adds), scaled by 1 / sum into the output rows.
 * The packed keys and values (about 2 x n x d floats: 299 KB at n = 577, d = 64) stay in the L2
 * cache for all groups, one group's scores (14 KB) in L1. A group's rows past n repeat its last
 * row (computed, not stored), so every micro-tile has six rows. */
#include "full_attention.h"

#define FU_ROWS LUHD_FULL_ATTENTION_ROWS
#define FU_INLINE static inline __attribute__((always_inline))

/* The next 64-byte aligned part of the work buffer. */
FU_INLINE float *fu_part(char **cursor, size_t bytes) {
    uintptr_t a = ((uintptr_t)*cursor + 63) & ~(uintptr_t)63;
    *cursor = (char *)(a + bytes);
    return (float *)a;
}

/* Keys j in [0, n) (rows `stride` apart, d a multiple of 8 values) into kp[n16 / 16][d][16],
 * zero for j >= n: 8 keys x 8 channels at a time through an 8 x 8 transpose in registers. */
FU_INLINE void fu_pack_keys(const float *k, long stride, long n, long n16, long d, float *kp) {
    for (long j0 = 0; j0 < n16; j0 += 8) {
        float *panel = kp + (j0 / 16) * d * 16 + (j0 % 16);
        for (long c0 = 0; c0 < d; c0 += 8) {
            vf r[8];
            for (int t = 0; t < 8; t++) r[t] = j0 + t < n ? v_load(k + (j0 + t) * stride + c0) : v_zero();
            vf t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
            vf t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
            vf t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
            vf t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
            /* u[c] holds channel c of keys 0-3 in its low half and channel c + 4 in its high half
             * (likewise w[c] for keys 4-7). */
            vf u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
            vf w[4] = {_mm256_shuffle_ps(t4, t6, 0x44), _mm256_shuffle_ps(t4, t6, 0xEE),
                       _mm256_shuffle_ps(t5, t7, 0x44), _mm256_shuffle_ps(t5, t7, 0xEE)};
            for (int c = 0; c < 4; c++) {
                v_store(panel + (c0 + c) * 16, _mm256_permute2f128_ps(u[c], w[c], 0x20));
                v_store(panel + (c0 + c + 4) * 16, _mm256_permute2f128_ps(u[c], w[c], 0x31));
            }
        }
    }
}

/* Values j in [0, n) into column slices: slice s (16 columns, or 8 for a last odd one) at
 * vp + 16 s n, row j of it `width` floats. */
FU_INLINE void fu_pack_values(const float *v, long stride, long n, long d, float *vp) {
    for (long s0 = 0; s0 < d; s0 += 16) {
        float *slice = vp + s0 * n;
        if (s0 + 16 <= d) {
            for (long j = 0; j < n; j++) {
                v_store(slice + j * 16, v_load(v + j * stride + s0));
                v_store(slice + j * 16 + 8, v_load(v + j * stride + s0 + 8));
            }
        } else {
            for (long j = 0; j < n; j++) v_store(slice + j * 8, v_load(v + j * stride + s0));
        }
    }
}

/* s[i][16p ..< 16p + 16] = scale * (q_i . k_t) for the group's six query rows q_i and panel p's
 * 16 keys (one fused multiply-add chain over c in order per score), and mx[i] = lane-wise max of
 * mx[i] and the scores of keys t < valid (the panel's keys below n). */
FU_INLINE void fu_scores(const float *const q[FU_ROWS], const float *panel, long d, vf scale, long valid, float *s,
                         long lds, vf mx[FU_ROWS]) {
    vf a0[FU_ROWS], a1[FU_ROWS];
    for (int i = 0; i < FU_ROWS; i++) a0[i] = a1[i] = v_zero();
    for (long c = 0; c < d; c++) {
        const vf b0 = v_load(panel + c * 16), b1 = v_load(panel + c * 16 + 8);
        for (int i = 0; i < FU_ROWS; i++) {
            const vf a = v_set(q[i][c]);
            a0[i] = v_fma(a, b0, a0[i]);
            a1[i] = v_fma(a, b1, a1[i]);
        }
    }
    const vf keep0 = _mm256_castsi256_ps(tail_mask(valid)), keep1 = _mm256_castsi256_ps(tail_mask(valid - 8));
    const vf none = v_set(-INFINITY);
    for (int i = 0; i < FU_ROWS; i++) {
        const vf s0 = v_mul(a0[i], scale), s1 = v_mul(a1[i], scale);
        v_store(s + i * lds, s0);
        v_store(s + i * lds + 8, s1);
        mx[i] = _mm256_max_ps(mx[i], _mm256_max_ps(_mm256_blendv_ps(none, s0, keep0), _mm256_blendv_ps(none, s1, keep1)));
    }
}

/* Row x[0 ..< n] of scores with largest value m (finite or not) in place to exp(x - m), the
 * `softmax` kernel's exponentials, and returns (float)(1 / sum) of them (sum in double lanes, as
 * softmax_stats); a row of -inf (m = -inf) becomes zeros and returns 0. */
FU_INLINE float fu_exp_row(float *x, long n, float m) {
    if (m == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof(float));
        return 0;
    }
    const vf vm = v_set(m);
    vd s0 = vd_zero(), s1 = vd_zero();
    long i = 0;
    for (; i + W <= n; i += W) {
        const vf e = k_exp(v_sub(v_load(x + i), vm));
        v_store(x + i, e);
        vd_add_halves(&s0, &s1, e);
    }
    if (i < n) {
        const vf e = k_exp(v_sub(v_load_n_fill(x + i, n - i, -INFINITY), vm));   /* exp(-inf) = 0 */
        v_store_n(x + i, e, n - i);
        vd_add_halves(&s0, &s1, e);
    }
    return (float)(1.0 / vd_hsum(s0, s1));
}

/* Keys per fused multiply-add chain of the value product (the chains' sums added in order: a
 * shorter chain than all n keys, as sgemm's blocking of k gives, for the rounding error). */
#define FU_KEY_CHAIN 64

/* out_i[c ..< c + 8 vectors] = inv_i * sum_j e_i[j] slice[j] for the group's six rows of
 * exponentials e_i and one value slice of `vectors` (1 or 2) x 8 columns: one fused multiply-add
 * chain per FU_KEY_CHAIN keys in order, the chains added in order, then one multiplication by
 * inv_i; rows i >= rows are computed and not stored. */
FU_INLINE void fu_values(const float *const e[FU_ROWS], const float *slice, long n, int vectors,
                         const float inv[FU_ROWS], float *out, long out_stride, long rows) {
    vf t0[FU_ROWS], t1[FU_ROWS];
    for (int i = 0; i < FU_ROWS; i++) t0[i] = t1[i] = v_zero();
    for (long j0 = 0; j0 < n; j0 += FU_KEY_CHAIN) {
        const long j1 = j0 + FU_KEY_CHAIN < n ? j0 + FU_KEY_CHAIN : n;
        vf a0[FU_ROWS], a1[FU_ROWS];
        for (int i = 0; i < FU_ROWS; i++) a0[i] = a1[i] = v_zero();
        if (vectors == 2) {
            for (long j = j0; j < j1; j++) {
                const vf b0 = v_load(slice + j * 16), b1 = v_load(slice + j * 16 + 8);
                for (int i = 0; i < FU_ROWS; i++) {
                    const vf a = v_set(e[i][j]);
                    a0[i] = v_fma(a, b0, a0[i]);
                    a1[i] = v_fma(a, b1, a1[i]);
                }
            }
        } else {
            for (long j = j0; j < j1; j++) {
                const vf b0 = v_load(slice + j * 8);
                for (int i = 0; i < FU_ROWS; i++) a0[i] = v_fma(v_set(e[i][j]), b0, a0[i]);
            }
        }
        for (int i = 0; i < FU_ROWS; i++) {
            t0[i] = v_add(t0[i], a0[i]);
            t1[i] = v_add(t1[i], a1[i]);
        }
    }
    for (long i = 0; i < rows; i++) {
        v_store(out + i * out_stride, v_mul(t0[i], v_set(inv[i])));
        if (vectors == 2) v_store(out + i * out_stride + 8, v_mul(t1[i], v_set(inv[i])));
    }
}

void luhd_avx2_full_attention(const float *q, const float *k, const float *v, long stride, long n, long d,
                              float scale, float *out, long out_stride, void *work);
void luhd_avx2_full_attention(const float *q, const float *k, const float *v, long stride, long n, long d,
                              float scale, float *out, long out_stride, void *work) {
    if (n <= 0 || d <= 0 || d % 8 != 0) return;
    const long n16 = (n + 15) / 16 * 16;
    char *cursor = (char *)work;
    float *kp = fu_part(&cursor, sizeof(float) * (size_t)(n16 * d));
    float *vp = fu_part(&cursor, sizeof(float) * (size_t)(n * d));
    float *s = fu_part(&cursor, sizeof(float) * (size_t)(FU_ROWS * n16));
    fu_pack_keys(k, stride, n, n16, d, kp);
    fu_pack_values(v, stride, n, d, vp);
    const vf vscale = v_set(scale);
    for (long r0 = 0; r0 < n; r0 += FU_ROWS) {
        const long rows = n - r0 < FU_ROWS ? n - r0 : FU_ROWS;
        const float *qi[FU_ROWS], *ei[FU_ROWS];
        float inv[FU_ROWS];
        vf mx[FU_ROWS];
        for (int i = 0; i < FU_ROWS; i++) {
            const long r = i < rows ? i : rows - 1;
            qi[i] = q + (r0 + r) * stride;
            ei[i] = s + r * n16;
            mx[i] = v_set(-INFINITY);
        }
        for (long j0 = 0; j0 < n16; j0 += 16)
            fu_scores(qi, kp + j0 * d, d, vscale, n - j0 < 16 ? n - j0 : 16, s + j0, n16, mx);
        for (long i = 0; i < rows; i++) inv[i] = fu_exp_row(s + i * n16, n, v_hmax(mx[i]));
        for (long i = rows; i < FU_ROWS; i++) inv[i] = inv[rows - 1];
        float *o = out + r0 * out_stride;
        for (long c0 = 0; c0 < d; c0 += 16)
            fu_values(ei, vp + c0 * n, n, c0 + 16 <= d ? 2 : 1, inv, o + c0, out_stride, rows);
    }
}
