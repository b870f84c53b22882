/* The prefill attention kernel (include/flash_attention.h), included by kernels_avx512.c after
 * kernels_simd.h, whose exp (k_exp, the `softmax` kernel's) and AVX-512 vocabulary it uses.
 *
 * Layout: a tile of up to 96 query rows is two sets of 48 rows, each row one vector lane (three
 * zmm per set). Per query head and set the queries are packed transposed, qt[c][lane], and the
 * outputs accumulate transposed, ot[c][lane]. Per key block (BLOCK = 48 positions) the keys are
 * widened into kb[j][c] and the values into vb[j][c] (float32, rows padded with zeros to a
 * multiple of 8 keys / 8 channels), then for each query head of the group and set of rows
 * that sees the block:
 *   scores: 8 keys x 3 lane vectors per micro-tile, one broadcast key value and three query
 *     vectors per step over c (24 fused multiply-adds, 3 vector loads, 8 broadcasts);
 *   softmax update per lane (whole vectors: no horizontal reduction anywhere);
 *   values: 8 channels x 3 lane vectors per micro-tile, one broadcast value and three
 *     probability vectors per key (24 fused multiply-adds), the outputs rescaled on load. */
#include "flash_attention.h"

#define FA_LANES LUHD_FLASH_LANES
#define FA_ROWS LUHD_FLASH_QUERY_ROWS
#define FA_SETS (FA_ROWS / FA_LANES)
#define FA_BLOCK LUHD_FLASH_KEY_BLOCK
#define FA_INLINE static inline __attribute__((always_inline))
/* Columns per fused multiply-add chain of a score (the chains' sums added in order). */
#define FA_CHAIN 16

/* The next 64-byte aligned part of the work buffer. */
FA_INLINE float *fa_part(char **cursor, size_t bytes) {
    uintptr_t a = ((uintptr_t)*cursor + 63) & ~(uintptr_t)63;
    *cursor = (char *)(a + bytes);
    return (float *)a;
}

/* Rows [0, n) of a cached matrix (`stride` elements apart, d values used per row) widened into
 * dst[n][width]: columns d..width and rows n..rows zero. */
FA_INLINE void fa_widen(int type, const void *src, long stride, long n, long rows, long d, long width, float *dst) {
    for (long j = 0; j < n; j++) {
        float *row = dst + j * width;
        long c = 0;
        if (type == LUHD_FLASH_KV_F32) {
            const float *s = (const float *)src + j * stride;
            for (; c + W <= d; c += W) v_store(row + c, v_load(s + c));
            if (c < d) v_store_n(row + c, v_load_n(s + c, d - c), d - c);
        } else if (type == LUHD_FLASH_KV_F16) {
            const uint16_t *s = (const uint16_t *)src + j * stride;
            for (; c + W <= d; c += W) v_store(row + c, v_load_f16(s + c));
            if (c < d) v_store_n(row + c, v_load_f16_n(s + c, d - c), d - c);
        } else {
            const uint16_t *s = (const uint16_t *)src + j * stride;
            for (; c + W <= d; c += W) v_store(row + c, v_load_bf16(s + c));
            if (c < d) v_store_n(row + c, v_load_bf16_n(s + c, d - c), d - c);
        }
        for (c = d; c < width; c++) row[c] = 0;
    }
    if (rows > n) memset(dst + n * width, 0, sizeof(float) * (size_t)((rows - n) * width));
}

/* Asks for rows [0, n) of a cached matrix in L2 ahead of their use. */
FA_INLINE void fa_prefetch(const char *src, long stride_bytes, long n, long row_bytes) {
    for (long j = 0; j < n; j++)
        for (long o = 0; o < row_bytes; o += 64) _mm_prefetch(src + j * stride_bytes + o, _MM_HINT_T1);
}

/* In-register transpose of a 16 x 16 float block: x[i] (row i) becomes column i. */
FA_INLINE void fa_transpose16(vf x[16]) {
    vf t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(x[i], x[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(x[i], x[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int k = 0; k < 2; k++) {
            x[i + 2 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + k]), _mm512_castps_pd(t[i + k + 2])));
            x[i + 2 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + k]), _mm512_castps_pd(t[i + k + 2])));
        }
    for (int i = 0; i < 16; i += 8)
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(x[i + k], x[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(x[i + k], x[i + k + 4], 0xDD);
        }
    for (int k = 0; k < 8; k++) {
        x[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        x[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xDD);
    }
}

/* Scores of 8 keys (kb rows, d apart) against NV lane vectors of queries: pt[a][lane] =
 * scale * (the sum, in order, of one fused multiply-add chain from zero per FA_CHAIN columns
 * c, in order: about 1/4 of a single chain's rounding error at d = 128), -inf where masks[a] (if given) hides
 * the key from the lane; the first `valid` keys (the others are padding) also go into the
 * running block maximum top. */
FA_INLINE void fa_scores(const float *qt, const float *kb, long d, float scale, float *pt, long valid,
                         const __mmask16 *masks, vf *top, const int NV) {
    vf acc[8][3];
    for (long c0 = 0; c0 < d; c0 += FA_CHAIN) {
        const long c1 = c0 + FA_CHAIN < d ? c0 + FA_CHAIN : d;
        for (int a = 0; a < 8; a++)
            for (int v = 0; v < NV; v++) acc[a][v] = v_zero();
        for (long c = c0; c < c1; c++) {
            vf qv[3];
            for (int v = 0; v < NV; v++) qv[v] = _mm512_load_ps(qt + c * FA_LANES + 16 * v);
            for (int a = 0; a < 8; a++) {
                vf k = v_set(kb[a * d + c]);
                for (int v = 0; v < NV; v++) acc[a][v] = v_fma(k, qv[v], acc[a][v]);
            }
        }
        if (c0 > 0)
            for (int a = 0; a < 8; a++)
                for (int v = 0; v < NV; v++) acc[a][v] = v_add(_mm512_load_ps(pt + a * FA_LANES + 16 * v), acc[a][v]);
        if (c1 < d)
            for (int a = 0; a < 8; a++)
                for (int v = 0; v < NV; v++) _mm512_store_ps(pt + a * FA_LANES + 16 * v, acc[a][v]);
    }
    vf s = v_set(scale);
    for (int a = 0; a < 8; a++)
        for (int v = 0; v < NV; v++) {
            vf x = v_mul(acc[a][v], s);
            if (a < valid) {
                if (masks) x = _mm512_mask_mov_ps(v_set(-INFINITY), masks[a * 3 + v], x);
                top[v] = _mm512_max_ps(top[v], x);
            }
            _mm512_store_ps(pt + a * FA_LANES + 16 * v, x);
        }
}

/* ot[c][lane] = ot[c][lane] * corr[lane] + sum over keys j < n in order of p[j][lane] * vb[j][c],
 * for all d8 channels, 8 at a time; MASKED: key j only in the lanes of masks[j][v]. */
FA_INLINE void fa_values(const float *pt, const float *vb, long d8, long n, float *ot, const vf *corr,
                         const __mmask16 *masks, const int NV, const int MASKED) {
    for (long cb = 0; cb < d8; cb += 8) {
        vf acc[8][3];
        for (int a = 0; a < 8; a++)
            for (int v = 0; v < NV; v++) acc[a][v] = v_mul(_mm512_load_ps(ot + (cb + a) * FA_LANES + 16 * v), corr[v]);
        for (long j = 0; j < n; j++) {
            vf p[3];
            for (int v = 0; v < NV; v++) p[v] = _mm512_load_ps(pt + j * FA_LANES + 16 * v);
            const float *vr = vb + j * d8 + cb;
            for (int a = 0; a < 8; a++) {
                vf x = v_set(vr[a]);
                for (int v = 0; v < NV; v++)
                    acc[a][v] = MASKED ? _mm512_mask3_fmadd_ps(x, p[v], acc[a][v], masks[j * 3 + v]) : v_fma(x, p[v], acc[a][v]);
            }
        }
        for (int a = 0; a < 8; a++)
            for (int v = 0; v < NV; v++) _mm512_store_ps(ot + (cb + a) * FA_LANES + 16 * v, acc[a][v]);
    }
}

/* One key block [k0, k0 + n) for one query head and one set of rows (positions first + lane,
 * 16 * NV lanes) whose running max mh, sums sh and outputs oh it updates; masked when the
 * block holds positions the set's first row does not see. */
FA_INLINE void fa_step(const float *qh, float *oh, float *mh, double *sh, const float *kb, const float *vb, float *pt,
                       long d, long d8, long n, float scale, long k0, long first, const int NV) {
    const long n8 = (n + 7) / 8 * 8;
    __mmask16 masks[FA_BLOCK * 3];
    /* Lane r (position first + r) sees key k0 + j when first + r >= k0 + j. */
    const int masked = k0 + n - 1 > first;
    if (masked)
        for (long j = 0; j < n; j++)
            for (int v = 0; v < NV; v++) {
                long hidden = k0 + j - first - 16 * v;   /* lanes of this vector that do not see key j */
                masks[j * 3 + v] = hidden <= 0 ? (__mmask16)0xFFFF : hidden >= 16 ? (__mmask16)0 : (__mmask16)(0xFFFFu << hidden);
            }
    vf top[3] = {v_set(-INFINITY), v_set(-INFINITY), v_set(-INFINITY)};
    for (long jb = 0; jb < n8; jb += 8)
        fa_scores(qh, kb + jb * d, d, scale, pt + jb * FA_LANES, n - jb, masked ? masks + jb * 3 : NULL, top, NV);
    vf corr[3];
    for (int v = 0; v < NV; v++) {
        float *col = pt + 16 * v;
        vf m = _mm512_load_ps(mh + 16 * v);
        vf next = _mm512_max_ps(m, top[v]);
        corr[v] = k_exp(v_sub(m, next));   /* exp(0) = 1 exactly when the max stays */
        _mm512_store_ps(mh + 16 * v, next);
        vd s0 = vd_zero(), s1 = vd_zero();
        for (long j = 0; j < n; j++) {
            vf p = k_exp(v_sub(_mm512_load_ps(col + j * FA_LANES), next));   /* exp(-inf) = 0 */
            _mm512_store_ps(col + j * FA_LANES, p);
            vd_add_halves(&s0, &s1, p);
        }
        double *l = sh + 16 * v;
        vd c0 = _mm512_cvtps_pd(_mm512_castps512_ps256(corr[v])), c1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(corr[v], 1));
        _mm512_store_pd(l, _mm512_add_pd(_mm512_mul_pd(_mm512_load_pd(l), c0), s0));
        _mm512_store_pd(l + 8, _mm512_add_pd(_mm512_mul_pd(_mm512_load_pd(l + 8), c1), s1));
    }
    if (masked) fa_values(pt, vb, d8, n, oh, corr, masks, NV, 1);
    else fa_values(pt, vb, d8, n, oh, corr, masks, NV, 0);
}

static void fa_step_any(int nv, const float *qh, float *oh, float *mh, double *sh, const float *kb, const float *vb,
                        float *pt, long d, long d8, long n, float scale, long k0, long first) {
    if (nv == 1) fa_step(qh, oh, mh, sh, kb, vb, pt, d, d8, n, scale, k0, first, 1);
    else if (nv == 2) fa_step(qh, oh, mh, sh, kb, vb, pt, d, d8, n, scale, k0, first, 2);
    else fa_step(qh, oh, mh, sh, kb, vb, pt, d, d8, n, scale, k0, first, 3);
}

/* One tile of at most FA_ROWS query rows (see include/flash_attention.h). */
static void fa_tile(int type, const void *keys, const void *values, long stride, long d, long group,
                    const float *q, long q_stride, long first, long rows, float scale, float *out,
                    long out_stride, void *work) {
    const long d8 = (d + 7) / 8 * 8;
    const size_t es = type == LUHD_FLASH_KV_F32 ? 4 : 2;
    const long sets = (rows + FA_LANES - 1) / FA_LANES;
    char *cursor = (char *)work;
    float *qt = fa_part(&cursor, sizeof(float) * (size_t)(group * FA_SETS * d * FA_LANES));
    float *ot = fa_part(&cursor, sizeof(float) * (size_t)(group * FA_SETS * d8 * FA_LANES));
    float *kb = fa_part(&cursor, sizeof(float) * (size_t)(FA_BLOCK * d));
    float *vb = fa_part(&cursor, sizeof(float) * (size_t)(FA_BLOCK * d8));
    float *pt = fa_part(&cursor, sizeof(float) * (size_t)(FA_BLOCK * FA_LANES));
    float *mx = fa_part(&cursor, sizeof(float) * (size_t)(group * FA_SETS * FA_LANES));
    double *sm = (double *)fa_part(&cursor, sizeof(double) * (size_t)(group * FA_SETS * FA_LANES));
    long set_first[FA_SETS], set_rows[FA_SETS];
    int set_nv[FA_SETS];
    for (long u = 0; u < sets; u++) {
        set_first[u] = first + u * FA_LANES;
        set_rows[u] = rows - u * FA_LANES < FA_LANES ? rows - u * FA_LANES : FA_LANES;
        set_nv[u] = (int)((set_rows[u] + 15) / 16);
    }

    for (long t = 0; t < group; t++)
        for (long u = 0; u < sets; u++) {
            const long h = t * FA_SETS + u, lanes = 16 * set_nv[u];
            float *qh = qt + h * d * FA_LANES, *oh = ot + h * d8 * FA_LANES;
            const float *qs = q + u * FA_LANES * q_stride + t * d;
            /* qh[c][r] = query r's column c (zero for rows past the set), 16 x 16 blocks at a time. */
            const long d16 = d / 16 * 16;
            for (long r0 = 0; r0 < lanes; r0 += 16)
                for (long c0 = 0; c0 < d16; c0 += 16) {
                    vf x[16];
                    for (int i = 0; i < 16; i++)
                        x[i] = r0 + i < set_rows[u] ? v_load(qs + (r0 + i) * q_stride + c0) : v_zero();
                    fa_transpose16(x);
                    for (int i = 0; i < 16; i++) _mm512_store_ps(qh + (c0 + i) * FA_LANES + r0, x[i]);
                }
            for (long r = 0; r < lanes; r++)
                for (long c = d16; c < d; c++) qh[c * FA_LANES + r] = r < set_rows[u] ? qs[r * q_stride + c] : 0.0f;
            for (long c = 0; c < d8; c++)
                for (long r = 0; r < lanes; r += 16) _mm512_store_ps(oh + c * FA_LANES + r, v_zero());
            for (long r = 0; r < lanes; r += 16) {
                _mm512_store_ps(mx + h * FA_LANES + r, v_set(-INFINITY));
                _mm512_store_pd(sm + h * FA_LANES + r, _mm512_setzero_pd());
                _mm512_store_pd(sm + h * FA_LANES + r + 8, _mm512_setzero_pd());
            }
        }

    const long last = first + rows - 1;
    const long blocks = last / FA_BLOCK + 1;
    const char *kbytes = (const char *)keys, *vbytes = (const char *)values;
    const long stride_bytes = stride * (long)es;
    for (long b = 0; b < blocks; b++) {
        const long k0 = b * FA_BLOCK;
        const long n = last + 1 - k0 < FA_BLOCK ? last + 1 - k0 : FA_BLOCK;
        fa_widen(type, kbytes + k0 * stride_bytes, stride, n, (n + 7) / 8 * 8, d, d, kb);
        fa_widen(type, vbytes + k0 * stride_bytes, stride, n, n, d, d8, vb);
        if (b + 1 < blocks) {
            const long next = last + 1 - k0 - FA_BLOCK < FA_BLOCK ? last + 1 - k0 - FA_BLOCK : FA_BLOCK;
            fa_prefetch(kbytes + (k0 + FA_BLOCK) * stride_bytes, stride_bytes, next, d * (long)es);
            fa_prefetch(vbytes + (k0 + FA_BLOCK) * stride_bytes, stride_bytes, next, d * (long)es);
        }
        for (long t = 0; t < group; t++)
            for (long u = 0; u < sets; u++) {
                const long set_last = set_first[u] + set_rows[u] - 1;
                if (k0 > set_last) continue;   /* a block no row of the set sees */
                const long m = set_last + 1 - k0 < FA_BLOCK ? set_last + 1 - k0 : FA_BLOCK;
                const long h = t * FA_SETS + u;
                fa_step_any(set_nv[u], qt + h * d * FA_LANES, ot + h * d8 * FA_LANES, mx + h * FA_LANES, sm + h * FA_LANES,
                            kb, vb, pt, d, d8, m, scale, k0, set_first[u]);
            }
    }

    for (long t = 0; t < group; t++)
        for (long u = 0; u < sets; u++) {
            const long h = t * FA_SETS + u;
            const float *oh = ot + h * d8 * FA_LANES;
            const double *sh = sm + h * FA_LANES;
            /* out row r = ot[.][r] / sum[r] (the reciprocal rounded to float, then one multiply per
             * value), 16 x 16 blocks at a time. */
            const long d16 = d / 16 * 16;
            float *y0 = out + u * FA_LANES * out_stride + t * d;
            for (long r0 = 0; r0 < set_rows[u]; r0 += 16) {
                const long nr = set_rows[u] - r0 < 16 ? set_rows[u] - r0 : 16;
                float inv[16];
                for (long i = 0; i < nr; i++) inv[i] = (float)(1.0 / sh[r0 + i]);
                for (long c0 = 0; c0 < d16; c0 += 16) {
                    vf x[16];
                    for (int i = 0; i < 16; i++) x[i] = _mm512_load_ps(oh + (c0 + i) * FA_LANES + r0);
                    fa_transpose16(x);
                    for (long i = 0; i < nr; i++) v_store(y0 + (r0 + i) * out_stride + c0, v_mul(x[i], v_set(inv[i])));
                }
                for (long i = 0; i < nr; i++)
                    for (long c = d16; c < d; c++) y0[(r0 + i) * out_stride + c] = oh[c * FA_LANES + r0 + i] * inv[i];
            }
        }
}

void luhd_avx512_flash_attention(int type, const void *keys, const void *values, long stride, long d, long group,
                                 const float *q, long q_stride, long first, long rows, float scale, float *out,
                                 long out_stride, void *work) {
    if (d <= 0 || group <= 0) return;
    for (long r0 = 0; r0 < rows; r0 += FA_ROWS) {
        const long n = rows - r0 < FA_ROWS ? rows - r0 : FA_ROWS;
        fa_tile(type, keys, values, stride, d, group, q + r0 * q_stride, q_stride, first + r0, n, scale,
                out + r0 * out_stride, out_stride, work);
    }
}

#undef FA_LANES
#undef FA_ROWS
#undef FA_SETS
#undef FA_BLOCK
#undef FA_INLINE
#undef FA_CHAIN
