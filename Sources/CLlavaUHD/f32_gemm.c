/* Float32 matrix products against packed weights with AVX-512 (see include/f32_gemm.h).
 *
 * Blocking: columns j of x in blocks of KC, each packed for all the caller's rows at once; within
 * a block, panels in groups of PG (a group's KC-column block stays in L2), and for each group the
 * rows in chunks of MC (a chunk's packed block stays in L2 while the group's panels pass it).
 * Every block after the first continues the sums stored in y, so each output is one FMA chain. */
#include "f32_gemm.h"
#include "blas_loader.h"
#include <immintrin.h>
#include <string.h>

#define NR LUHD_F32_GEMM_NR
/* Vectors of 16 per panel. */
#define NV (NR / 16)
#ifndef MR
#define MR 14
#endif
#ifndef KC
#define KC 384
#endif
#ifndef MC
#define MC 112
#endif
/* Panels per group (a group's KC-column block, PG x KC x NR floats, stays in L2 while every
 * chunk of MC rows passes it). */
#ifndef PG
#define PG 8
#endif

int luhd_f32_gemm_available(void) {
    const luhd_cpu_features *f = luhd_cpu();
    return f->avx512f;
}

size_t luhd_f32_gemm_packed_floats(long k, long n) {
    return (size_t)((n + NR - 1) / NR) * (size_t)k * NR;
}

static inline float half_to_float(uint16_t h) {
    return _cvtsh_ss(h);
}

static inline float bf16_to_float(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void luhd_f32_gemm_pack_w(const void *w, int dtype, long ldw, long k, long n, long p0, long p1, float *wp) {
    for (long p = p0; p < p1; p++) {
        float *dst = wp + (size_t)p * (size_t)k * NR;
        const long c0 = p * NR, cols = n - c0 < NR ? n - c0 : NR;
        /* Blocks of 64 columns of x: 32 row streams each read 64 values in turn. */
        for (long j0 = 0; j0 < k; j0 += 64) {
            const long j1 = k - j0 < 64 ? k : j0 + 64;
            for (long l = 0; l < cols; l++) {
                const size_t row = (size_t)(c0 + l) * (size_t)ldw;
                switch (dtype) {
                case 0: {
                    const float *src = (const float *)w + row;
                    for (long j = j0; j < j1; j++) dst[(size_t)j * NR + l] = src[j];
                    break;
                }
                case 1: {
                    const uint16_t *src = (const uint16_t *)w + row;
                    for (long j = j0; j < j1; j++) dst[(size_t)j * NR + l] = half_to_float(src[j]);
                    break;
                }
                default: {
                    const uint16_t *src = (const uint16_t *)w + row;
                    for (long j = j0; j < j1; j++) dst[(size_t)j * NR + l] = bf16_to_float(src[j]);
                    break;
                }
                }
            }
            for (long l = cols; l < NR; l++)
                for (long j = j0; j < j1; j++) dst[(size_t)j * NR + l] = 0;
        }
    }
}

void luhd_f32_gemm_pack_wt(const float *w, long ldw, long k, long n, long p0, long p1, float *wp) {
    for (long p = p0; p < p1; p++) {
        float *dst = wp + (size_t)p * (size_t)k * NR;
        const long c0 = p * NR, cols = n - c0 < NR ? n - c0 : NR;
        for (long j = 0; j < k; j++) {
            const float *src = w + (size_t)j * (size_t)ldw + c0;
            float *d = dst + (size_t)j * NR;
            memcpy(d, src, (size_t)cols * 4);
            for (long l = cols; l < NR; l++) d[l] = 0;
        }
    }
}

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)

/* Packs rows [i0, i1) and columns [j0, j0 + kc) of x into blocks of MR rows:
 * xp[b * kc * MR + j * MR + r] = x[i0 + b * MR + r][j0 + j], rows past i1 zero. (Rows of x are
 * often a multiple of 4 KB apart: read in place, the 14 rows of a micro-kernel would share
 * one L1 set.) */
static void pack_x(const float *x, long ldx, long i0, long i1, long j0, long kc, float *xp) {
    for (long b = 0; i0 + b * MR < i1; b++) {
        float *dst = xp + (size_t)b * (size_t)kc * MR;
        const long rows = i1 - (i0 + b * MR) < MR ? i1 - (i0 + b * MR) : MR;
        for (long r = 0; r < rows; r++) {
            const float *src = x + (size_t)(i0 + b * MR + r) * (size_t)ldx + j0;
            for (long j = 0; j < kc; j++) dst[(size_t)j * MR + r] = src[j];
        }
        for (long r = rows; r < MR; r++)
            for (long j = 0; j < kc; j++) dst[(size_t)j * MR + r] = 0;
    }
}

/* MR rows of x times one panel over kc columns: x value (r, j) at xp[r * sr + j * sj] (packed:
 * sr = 1, sj = MR; in place: sr = ldx, sj = 1). Rows < `rows` of y are loaded (unless first:
 * the sums start from 0) and stored; panel columns whose mask bit is clear are not. */
static inline __attribute__((always_inline)) void micro(const float *xp, long sr, long sj, const float *wp, long kc,
                                                        float *y, long ldy, int rows, int first,
                                                        const __mmask16 *masks) {
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    if (!first) {
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_maskz_loadu_ps(masks[v], y + r * ldy + 16 * v);
    }
    for (long j = 0; j < kc; j++) {
        __m512 w[NV];
        for (int v = 0; v < NV; v++) w[v] = _mm512_load_ps(wp + j * NR + 16 * v);
        for (int r = 0; r < MR; r++) {
            const __m512 xv = _mm512_set1_ps(xp[r * sr + j * sj]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(xv, w[v], acc[r][v]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(y + r * ldy + 16 * v, masks[v], acc[r][v]);
}

static void micro_packed(const float *xp, const float *wp, long kc, float *y, long ldy, int rows, int first,
                         const __mmask16 *masks) {
    micro(xp, 1, MR, wp, kc, y, ldy, rows, first, masks);
}

/* In place: rows past `rows` read row 0 again (their sums are not stored). */
static void micro_in_place(const float *x, long ldx, const float *wp, long kc, float *y, long ldy, int rows,
                           int first, const __mmask16 *masks) {
    if (rows == MR) {
        micro(x, ldx, 1, wp, kc, y, ldy, rows, first, masks);
    } else {
        /* A short block: rows r >= `rows` alias row 0 through a zero row stride past the end. */
        const float *rowp[MR];
        for (int r = 0; r < MR; r++) rowp[r] = x + (r < rows ? r : 0) * ldx;
        __m512 acc[MR][NV];
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
        if (!first) {
            for (int r = 0; r < rows; r++)
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_maskz_loadu_ps(masks[v], y + r * ldy + 16 * v);
        }
        for (long j = 0; j < kc; j++) {
            __m512 w[NV];
            for (int v = 0; v < NV; v++) w[v] = _mm512_load_ps(wp + j * NR + 16 * v);
            for (int r = 0; r < MR; r++) {
                const __m512 xv = _mm512_set1_ps(rowp[r][j]);
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(xv, w[v], acc[r][v]);
            }
        }
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(y + r * ldy + 16 * v, masks[v], acc[r][v]);
    }
}

size_t luhd_f32_gemm_x_floats(long rows) {
    return (size_t)((rows + MR - 1) / MR) * MR * KC;
}

void luhd_f32_gemm(const float *x, long ldx, long m0, long m1, const float *wp, long k, long n, long p0, long p1,
                   float *y, long ldy, float *xbuf) {
    if (m1 <= m0 || p1 <= p0 || k <= 0) return;
    for (long k0 = 0; k0 < k; k0 += KC) {
        const long kc = k - k0 < KC ? k - k0 : KC;
        if (xbuf) pack_x(x, ldx, m0, m1, k0, kc, xbuf);
        for (long g0 = p0; g0 < p1; g0 += PG) {
            const long g1 = p1 - g0 < PG ? p1 : g0 + PG;
            for (long i0 = m0; i0 < m1; i0 += MC) {
                const long i1 = m1 - i0 < MC ? m1 : i0 + MC;
                for (long p = g0; p < g1; p++) {
                    const long c0 = p * NR, cols = n - c0 < NR ? n - c0 : NR;
                    __mmask16 masks[NV];
                    for (int v = 0; v < NV; v++) {
                        const long left = cols - 16 * v;
                        masks[v] = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
                    }
                    const float *panel = wp + (size_t)p * (size_t)k * NR + (size_t)k0 * NR;
                    for (long i = i0; i < i1; i += MR) {
                        const int rows = i1 - i < MR ? (int)(i1 - i) : MR;
                        if (xbuf)
                            micro_packed(xbuf + (size_t)((i - m0) / MR) * (size_t)kc * MR, panel, kc, y + i * ldy + c0,
                                         ldy, rows, k0 == 0, masks);
                        else
                            micro_in_place(x + i * ldx + k0, ldx, panel, kc, y + i * ldy + c0, ldy, rows, k0 == 0,
                                           masks);
                    }
                }
            }
        }
    }
}

#pragma clang attribute pop
