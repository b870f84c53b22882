/* Int8 matrix products for prefill with x quantized per super-block of 256 (declared in
 * quant_kernels.h): y[i][n] = sum_k W[n][k] * x[i][k] for the K formats whose integer sub-block
 * scales can be applied in the integer domain (Q4_K, Q5_K, Q6_K, Q3_K), with AVX-512 VNNI.
 *
 * x is quantized per 256 elements (dx = max|x| / 127, round to nearest even, clamped to +-127,
 * as luhd_quant_gemm_prepare_x does per 32; a super-block holding a non-finite value gets zeros
 * and dx = NaN, so its products are NaN) and stored as x + 128 (the unsigned operand of
 * vpdpbusd), then per row f32 dx per super-block and int16 sums X of the int8 values per 32.
 * A tile holds 16 weight rows (two tiles side by side for 17-32 rows) per super-block: the
 * signed integer weights w in the layout of quant_gemm_vnni.c (per 32 elements 8 groups of 64
 * bytes, row n's 4 consecutive weights in lane n), then per lane the integer scales of the
 * parts (Q4_K: 8 sub-blocks of 32, Q6_K: 16 of 16), the Q4_K mins as int16 pairs, the
 * correction C = -128 sum_p sc_p sum w_p of the + 128, and f32 d (and dmin). Per super-block
 * and row i of x:
 *   Q4_K, Q5_K: w = q (0..15, 0..31), y += dx (d S - dmin M), S = C + sum_j sc_j sum (xq + 128) w,
 *         M = sum_j m_j X_j (vpdpwssd of the int16 mins with the int16 sums of x);
 *   Q6_K, Q3_K: w = q - 32 (-4..3 for Q3_K), y += (d dx) S, S = C + sum_h sc_h sum (xq + 128) w.
 * Q4_K and Q6_K rows are read with gathers, Q5_K and Q3_K unpacked row by row (super_block_ints).
 * S and M are exact integers (|S| < 2^29); the float epilogue runs once per 256 columns instead
 * of once per 32 (the per-32 kernel's convert, scale product and multiply-adds share the
 * vpdpbusd pipes). Results are W . x~ up to f32 rounding, x~ the per-256 int8 image of x, the
 * same bits whatever the tiling (16 or 32 rows, n0, column ranges). */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))), apply_to = function)

/* Bytes of one super-block of a 16-row tile, and the offsets inside it. */
#define KT_BYTES 5568
#define KT_SC 4096   /* 16 x 16 int32 scales (Q4_K, Q5_K: the first 8) */
#define KT_MIN 5120  /* 4 x 16 int32: Q4_K / Q5_K mins m_2p | m_2p+1 << 16 */
#define KT_C 5376    /* 16 int32 corrections */
#define KT_D 5440    /* 16 f32 d */
#define KT_DMIN 5504 /* 16 f32 dmin (Q4_K, Q5_K) */
/* Rows of x per step of the product. */
#define K_ROWS 4

int luhd_quant_gemm_k_supports(int format) {
    return format == LUHD_QF_Q4_K || format == LUHD_QF_Q6_K || format == LUHD_QF_Q5_K || format == LUHD_QF_Q3_K;
}

/* Whether a format's parts are 16 halves of 16 elements without offsets (Q6_K, Q3_K), else 8
 * sub-blocks of 32 with mins (Q4_K, Q5_K). */
static int k_halves(int format) { return format == LUHD_QF_Q6_K || format == LUHD_QF_Q3_K; }

static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* One super-block (at p) of Q5_K or Q3_K, the formats without a gathered unpacking below:
 * signed integer weights w, the integer scales of its parts (Q5_K: 8 sub-blocks, with mins;
 * Q3_K: 16 halves, 6 bits minus 32), d and dmin (0 for Q3_K), value = d sc w - dmin m. */
static void super_block_ints(int format, const uint8_t *p, int8_t w[256], int32_t sc[16], int32_t mn[8], float *d,
                             float *dmin) {
    if (format == LUHD_QF_Q5_K) {   /* sub-block t: nibble t % 2 of bytes 48 + 32 (t / 2) + l, fifth bit t of byte 16 + l */
        *d = half_at(p);
        *dmin = half_at(p + 2);
        for (int t = 0; t < 8; t++) {
            int a, b;
            luhd_q4k_scale_min(p + 4, t, &a, &b);
            sc[t] = a, mn[t] = b;
            for (int l = 0; l < 32; l++)
                w[32 * t + l] = (int8_t)(((p[48 + 32 * (t / 2) + l] >> (4 * (t % 2))) & 0x0F) | ((p[16 + l] >> t) & 1) << 4);
        }
    } else {   /* Q3_K: elements 32 t + l: bits 2 (t % 4) of byte 32 + 32 (t / 4) + l, high bit t of byte l */
        *d = half_at(p + 108);
        *dmin = 0.0f;
        for (int t = 0; t < 8; t++) {
            for (int l = 0; l < 32; l++)
                w[32 * t + l] = (int8_t)(((p[32 + 32 * (t / 4) + l] >> (2 * (t % 4))) & 3) - (((p[l] >> t) & 1) ? 0 : 4));
            mn[t] = 0;
        }
        for (int j = 0; j < 16; j++) sc[j] = luhd_q3k_scale(p + 96, j);
    }
}

/* A row of prepared x: cols bytes xq + 128, f32 dx[cols / 256], int16 X[cols / 32]. */
size_t luhd_quant_gemm_k_x_bytes(long cols, long m) {
    if (cols <= 0 || m <= 0) return 0;
    const size_t row = (size_t)cols + (size_t)(cols / 256) * 4 + (size_t)(cols / 32) * 2;
    return (row + 63) / 64 * 64 * (size_t)m;
}

size_t luhd_quant_gemm_k_tile_bytes(long cols) { return cols <= 0 ? 0 : 2 * (size_t)(cols / 256) * KT_BYTES; }

#define ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
void luhd_quant_gemm_k_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf) {
    const size_t stride = luhd_quant_gemm_k_x_bytes(cols, 1);
    const long nsb = cols / 256;
    const __m512 magnitude = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    const __m512 inf = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m512i bias = _mm512_set1_epi32(128);
    for (long i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)xbuf + (size_t)i * stride;
        float *dxs = (float *)(row + cols);
        int16_t *sums = (int16_t *)(dxs + nsb);
        for (long s = 0; s < nsb; s++) {
            const float *xs = x + i * ldx + 256 * s;
            __m512 amax = _mm512_setzero_ps();
            __mmask16 finite = 0xFFFF;
            for (int v = 0; v < 16; v++) {
                const __m512 a = _mm512_and_ps(_mm512_loadu_ps(xs + 16 * v), magnitude);
                finite &= _mm512_cmp_ps_mask(a, inf, _CMP_LT_OQ);
                amax = _mm512_max_ps(amax, a);
            }
            const int ok = finite == (__mmask16)0xFFFF;
            const float dx = ok ? _mm512_reduce_max_ps(amax) / 127.0f : NAN;
            const __m512 id = _mm512_set1_ps(ok && dx != 0.0f ? 1.0f / dx : 0.0f);
            const __mmask16 keep = ok ? 0xFFFF : 0;   /* a non-finite super-block stores zeros */
            for (int v = 0; v < 16; v += 2) {
                const __m512 v0 = _mm512_maskz_loadu_ps(keep, xs + 16 * v), v1 = _mm512_maskz_loadu_ps(keep, xs + 16 * v + 16);
                const __m512 q0 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), ROUND_NEAREST), lo), hi);
                const __m512 q1 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), ROUND_NEAREST), lo), hi);
                const __m512i i0 = _mm512_cvttps_epi32(q0), i1 = _mm512_cvttps_epi32(q1);
                _mm_storeu_si128((__m128i *)(row + 256 * s + 16 * v), _mm512_cvtepi32_epi8(_mm512_add_epi32(i0, bias)));
                _mm_storeu_si128((__m128i *)(row + 256 * s + 16 * v + 16), _mm512_cvtepi32_epi8(_mm512_add_epi32(i1, bias)));
                sums[8 * s + v / 2] = (int16_t)_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            }
            dxs[s] = dx;
        }
    }
}
#undef ROUND_NEAREST

/* Unpacks super-blocks [s0, s1) of rows [n0, n0 + nr) (nr <= 16) of W into the tile; missing
 * rows are zero. Lane n of each gathered vector holds 4 bytes of row n. */
static void pack_tile_k(int format, const uint8_t *w, size_t rb, long n0, int nr, long s0, long s1, uint8_t *tile) {
    const __mmask16 rows = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    const __m512i rowoff = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32((int)rb));
    const uint8_t *base = w + (size_t)n0 * rb;
    const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1), low4 = _mm512_set1_epi8(0x0F);
    const __m512i k3 = _mm512_set1_epi8(3), k32 = _mm512_set1_epi8(32), m128 = _mm512_set1_epi32(-128);
    const __m512i b63 = _mm512_set1_epi32(63), b15 = _mm512_set1_epi32(0x0F);
#define GATHER(OFF) _mm512_mask_i32gather_epi32(zero, rows, _mm512_add_epi32(rowoff, _mm512_set1_epi32((int)(OFF))), base, 1)
    for (long s = s0; s < s1; s++) {
        uint8_t *tb = tile + (size_t)(s - s0) * KT_BYTES;
        __m512i corr = zero;
        if (format == LUHD_QF_Q4_K) {
            const long sb = 144 * s;
            const __m512i dd = GATHER(sb);   /* d in the low 16 bits, dmin in the high 16 */
            _mm512_storeu_ps((float *)(tb + KT_D), _mm512_maskz_mov_ps(rows, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd))));
            _mm512_storeu_ps((float *)(tb + KT_DMIN), _mm512_maskz_mov_ps(rows, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)))));
            /* The 6-bit scales and mins of the 8 sub-blocks (luhd_q4k_scale_min), bytes 4..15. */
            const __m512i s03 = GATHER(sb + 4), m03 = GATHER(sb + 8), h47 = GATHER(sb + 12);
            __m512i mn[8];
            for (int j = 0; j < 8; j++) {
                __m512i sc;
                if (j < 4) {
                    sc = _mm512_and_si512(_mm512_srli_epi32(s03, 8 * j), b63);
                    mn[j] = _mm512_and_si512(_mm512_srli_epi32(m03, 8 * j), b63);
                } else {
                    const __m512i h = _mm512_srli_epi32(h47, 8 * (j - 4));
                    sc = _mm512_or_si512(_mm512_and_si512(h, b15),
                                         _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s03, 8 * (j - 4) + 6), _mm512_set1_epi32(3)), 4));
                    mn[j] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h, 4), b15),
                                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(m03, 8 * (j - 4) + 6), _mm512_set1_epi32(3)), 4));
                }
                __m512i sum = zero;
                for (int kq = 0; kq < 8; kq++) {
                    const __m512i v = GATHER(sb + 16 + 32 * (j / 2) + 4 * kq);
                    const __m512i q = _mm512_and_si512(j % 2 ? _mm512_srli_epi32(v, 4) : v, low4);
                    _mm512_storeu_si512(tb + 512 * j + 64 * kq, q);
                    sum = _mm512_dpbusd_epi32(sum, ones, q);
                }
                _mm512_storeu_si512(tb + KT_SC + 64 * j, sc);
                corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(_mm512_mullo_epi32(sum, m128), sc));
            }
            for (int p = 0; p < 4; p++)
                _mm512_storeu_si512(tb + KT_MIN + 64 * p, _mm512_or_si512(mn[2 * p], _mm512_slli_epi32(mn[2 * p + 1], 16)));
        } else if (format == LUHD_QF_Q5_K || format == LUHD_QF_Q3_K) {
            /* Each row's super-block unpacked in row n of wt, then gathered by columns of 4. */
            int8_t wt[16][256] __attribute__((aligned(64)));
            int32_t sct[16][16], mnt[16][8];
            float dt[16], dmt[16];
            memset(wt, 0, sizeof wt);
            memset(sct, 0, sizeof sct);
            memset(mnt, 0, sizeof mnt);
            memset(dt, 0, sizeof dt);
            memset(dmt, 0, sizeof dmt);
            for (int n = 0; n < nr; n++)
                super_block_ints(format, base + (size_t)n * rb + (size_t)s * (format == LUHD_QF_Q5_K ? 176 : 110), wt[n], sct[n],
                                 mnt[n], &dt[n], &dmt[n]);
            _mm512_storeu_ps((float *)(tb + KT_D), _mm512_loadu_ps(dt));
            _mm512_storeu_ps((float *)(tb + KT_DMIN), _mm512_loadu_ps(dmt));
            const __m512i byrow = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                     _mm512_set1_epi32(256));
            const int halves = k_halves(format), parts = halves ? 16 : 8, groups = halves ? 4 : 8;
            for (int p = 0; p < parts; p++) {
                __m512i sum = zero;
                for (int g = groups * p; g < groups * (p + 1); g++) {
                    const __m512i q = _mm512_i32gather_epi32(_mm512_add_epi32(byrow, _mm512_set1_epi32(4 * g)), wt, 1);
                    _mm512_storeu_si512(tb + 64 * g, q);
                    sum = _mm512_dpbusd_epi32(sum, ones, q);
                }
                int32_t col[16];
                for (int n = 0; n < 16; n++) col[n] = sct[n][p];
                const __m512i sc = _mm512_loadu_si512(col);
                _mm512_storeu_si512(tb + KT_SC + 64 * p, sc);
                corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(_mm512_mullo_epi32(sum, m128), sc));
            }
            for (int p = 0; p < 4; p++) {
                int32_t col[16];
                for (int n = 0; n < 16; n++) col[n] = mnt[n][2 * p] | mnt[n][2 * p + 1] << 16;
                _mm512_storeu_si512(tb + KT_MIN + 64 * p, _mm512_loadu_si512(col));
            }
        } else { /* Q6_K: elements 32j..32j+31 are halves 2j, 2j + 1 */
            const long sb = 210 * s;
            const __m512i d16 = _mm512_srli_epi32(GATHER(sb + 206), 16);   /* d: the dword ending at the block's end */
            _mm512_storeu_ps((float *)(tb + KT_D), _mm512_maskz_mov_ps(rows, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d16))));
            _mm512_storeu_si512(tb + KT_DMIN, zero);
            for (int j = 0; j < 8; j++) {
                const int h = j / 4, part = j % 4;
                __m512i sum0 = zero, sum1 = zero;
                for (int kq = 0; kq < 8; kq++) {
                    const __m512i l = GATHER(sb + 64 * h + (part % 2) * 32 + 4 * kq);
                    const __m512i hb = GATHER(sb + 128 + 32 * h + 4 * kq);
                    const __m512i lo = _mm512_and_si512(part < 2 ? l : _mm512_srli_epi32(l, 4), low4);
                    const __m512i up = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hb, 2 * part), k3), 4);
                    const __m512i q = _mm512_sub_epi8(_mm512_or_si512(lo, up), k32);
                    _mm512_storeu_si512(tb + 512 * j + 64 * kq, q);
                    if (kq < 4) sum0 = _mm512_dpbusd_epi32(sum0, ones, q);
                    else sum1 = _mm512_dpbusd_epi32(sum1, ones, q);
                }
                const __m512i sc = GATHER(sb + 192 + 2 * j);   /* int8 scales 2j, 2j + 1 in the low bytes */
                const __m512i sc0 = _mm512_srai_epi32(_mm512_slli_epi32(sc, 24), 24), sc1 = _mm512_srai_epi32(_mm512_slli_epi32(sc, 16), 24);
                _mm512_storeu_si512(tb + KT_SC + 64 * (2 * j), sc0);
                _mm512_storeu_si512(tb + KT_SC + 64 * (2 * j + 1), sc1);
                corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(_mm512_mullo_epi32(sum0, m128), sc0));
                corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(_mm512_mullo_epi32(sum1, m128), sc1));
            }
            for (int p = 0; p < 4; p++) _mm512_storeu_si512(tb + KT_MIN + 64 * p, zero);
        }
        _mm512_storeu_si512(tb + KT_C, corr);
    }
#undef GATHER
}

/* MR rows of x against NT (1 or 2) packed tiles (tile B `tstride` bytes after tile A), super-blocks
 * [s0, s1), outputs starting at 0 or (accumulate) at y's values. Q6 selects the format's parts:
 * 16 halves of 4 groups of 4 bytes (Q6_K, Q3_K) or 8 sub-blocks of 8 (Q4_K, Q5_K, then their
 * min term). */
static inline __attribute__((always_inline)) void k_rows(int q6, int nt, const uint8_t *tile, size_t tstride, long s0,
                                                         long s1, const uint8_t *xbuf, size_t xstride, long cols, long i0,
                                                         int mr, float *y, long ldy, long n0, __mmask16 maska,
                                                         __mmask16 maskb, int accumulate) {
    const long nsb = cols / 256;
    __m512 out[K_ROWS][2];
    const uint8_t *xr[K_ROWS];
    for (int i = 0; i < mr; i++) {
        xr[i] = xbuf + (size_t)(i0 + i) * xstride;
        out[i][0] = accumulate ? _mm512_maskz_loadu_ps(maska, y + (i0 + i) * ldy + n0) : _mm512_setzero_ps();
        out[i][1] = accumulate && nt == 2 ? _mm512_maskz_loadu_ps(maskb, y + (i0 + i) * ldy + n0 + 16) : _mm512_setzero_ps();
    }
    const int parts = q6 ? 16 : 8, groups = q6 ? 4 : 8;
    for (long s = s0; s < s1; s++) {
        const uint8_t *t[2] = {tile + (size_t)(s - s0) * KT_BYTES, tile + (size_t)(s - s0) * KT_BYTES + tstride};
        __m512i sum[K_ROWS][2];
        for (int h = 0; h < nt; h++) {
            const __m512i c = _mm512_loadu_si512(t[h] + KT_C);
            for (int i = 0; i < mr; i++) sum[i][h] = c;
        }
        for (int p = 0; p < parts; p++) {
            __m512i acc[K_ROWS][2];
            for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
            for (int g = groups * p; g < groups * (p + 1); g++) {
                const __m512i wa = _mm512_loadu_si512(t[0] + 64 * g);
                const __m512i wb = nt == 2 ? _mm512_loadu_si512(t[1] + 64 * g) : wa;
                for (int i = 0; i < mr; i++) {
                    int32_t xw;
                    memcpy(&xw, xr[i] + 256 * s + 4 * g, 4);
                    const __m512i xv = _mm512_set1_epi32(xw);
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], xv, wa);
                    if (nt == 2) acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], xv, wb);
                }
            }
            for (int h = 0; h < nt; h++) {
                const __m512i sc = _mm512_loadu_si512(t[h] + KT_SC + 64 * p);
                for (int i = 0; i < mr; i++) sum[i][h] = _mm512_add_epi32(sum[i][h], _mm512_mullo_epi32(acc[i][h], sc));
            }
        }
        if (q6) {
            for (int h = 0; h < nt; h++) {
                const __m512 d = _mm512_loadu_ps((const float *)(t[h] + KT_D));
                for (int i = 0; i < mr; i++) {
                    const float dx = ((const float *)(xr[i] + cols))[s];
                    out[i][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[i][h]), _mm512_mul_ps(d, _mm512_set1_ps(dx)), out[i][h]);
                }
            }
        } else {
            __m512i mins[K_ROWS][2];
            for (int i = 0; i < mr; i++) mins[i][0] = mins[i][1] = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) {
                const __m512i ma = _mm512_loadu_si512(t[0] + KT_MIN + 64 * p);
                const __m512i mb = nt == 2 ? _mm512_loadu_si512(t[1] + KT_MIN + 64 * p) : ma;
                for (int i = 0; i < mr; i++) {
                    int32_t xs;
                    memcpy(&xs, xr[i] + cols + 4 * nsb + 2 * (8 * s + 2 * p), 4);
                    const __m512i xv = _mm512_set1_epi32(xs);
                    mins[i][0] = _mm512_dpwssd_epi32(mins[i][0], xv, ma);
                    if (nt == 2) mins[i][1] = _mm512_dpwssd_epi32(mins[i][1], xv, mb);
                }
            }
            for (int h = 0; h < nt; h++) {
                const __m512 d = _mm512_loadu_ps((const float *)(t[h] + KT_D)), dmin = _mm512_loadu_ps((const float *)(t[h] + KT_DMIN));
                for (int i = 0; i < mr; i++) {
                    const float dx = ((const float *)(xr[i] + cols))[s];
                    const __m512 v = _mm512_fmsub_ps(_mm512_cvtepi32_ps(sum[i][h]), d, _mm512_mul_ps(_mm512_cvtepi32_ps(mins[i][h]), dmin));
                    out[i][h] = _mm512_fmadd_ps(v, _mm512_set1_ps(dx), out[i][h]);
                }
            }
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(y + (i0 + i) * ldy + n0, maska, out[i][0]);
        if (nt == 2) _mm512_mask_storeu_ps(y + (i0 + i) * ldy + n0 + 16, maskb, out[i][1]);
    }
}

void luhd_quant_gemm_k_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                    long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate) {
    if (!luhd_quant_gemm_k_supports(format) || nr <= 0 || m <= 0 || k0 < 0 || k1 > cols || k0 >= k1 || k0 % 256 != 0
        || k1 % 256 != 0)
        return;
    if (nr > 32) nr = 32;
    const long s0 = k0 / 256, s1 = k1 / 256;
    uint8_t *t = (uint8_t *)tile;
    const size_t tstride = (size_t)(s1 - s0) * KT_BYTES;
    pack_tile_k(format, (const uint8_t *)w, row_bytes, n0, nr > 16 ? 16 : nr, s0, s1, t);
    const int nt = nr > 16 ? 2 : 1;
    if (nt == 2) pack_tile_k(format, (const uint8_t *)w, row_bytes, n0 + 16, nr - 16, s0, s1, t + tstride);
    const __mmask16 maska = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    const __mmask16 maskb = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    const uint8_t *xb = (const uint8_t *)xbuf;
    const size_t xs = luhd_quant_gemm_k_x_bytes(cols, 1);
    const int q6 = k_halves(format), acc = accumulate != 0;
#define KROWS(MR)                                                                                              \
    if (q6 && nt == 2) k_rows(1, 2, t, tstride, s0, s1, xb, xs, cols, i, MR, y, ldy, n0, maska, maskb, acc);      \
    else if (q6) k_rows(1, 1, t, tstride, s0, s1, xb, xs, cols, i, MR, y, ldy, n0, maska, maskb, acc);            \
    else if (nt == 2) k_rows(0, 2, t, tstride, s0, s1, xb, xs, cols, i, MR, y, ldy, n0, maska, maskb, acc);       \
    else k_rows(0, 1, t, tstride, s0, s1, xb, xs, cols, i, MR, y, ldy, n0, maska, maskb, acc);
    long i = 0;
    for (; i + K_ROWS <= m; i += K_ROWS) {
        /* The next rows' outputs, ldy floats apart (no prefetcher follows them). */
        for (long j = i + K_ROWS; j < i + 2 * K_ROWS && j < m; j++) _mm_prefetch((const char *)(y + j * ldy + n0), _MM_HINT_T0);
        KROWS(K_ROWS)
    }
    switch (m - i) {
    case 3: KROWS(3) break;
    case 2: KROWS(2) break;
    case 1: KROWS(1) break;
    default: break;
    }
#undef KROWS
}
#pragma clang attribute pop
