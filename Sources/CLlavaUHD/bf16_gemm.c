/* bf16 matrix products with AVX512_BF16 (see include/bf16_gemm.h).
 *
 * Micro-kernel: 32 rows of x (two zmm of 16 lanes, one lane per row) against NR <= 12 weight
 * rows. For each column pair p, the packed x vectors hold the pair of every row, and each weight
 * row's pair is broadcast straight from the weight matrix (vdpbf16ps with a 32-bit broadcast),
 * so the weights need no packing: 24 accumulators, 2 vector loads and NR broadcasts per 2 x NR
 * vdpbf16ps. Columns run in blocks of KC (a block of NR weight rows stays in L1 while every x
 * panel passes it); each block's sums are added to y in block order. */
#include "bf16_gemm.h"
#include "blas_loader.h"
#include <immintrin.h>
#include <string.h>

#define MR 32
#define NR_MAX 12
#define KC 1024

int luhd_bf16_gemm_available(void) {
    const luhd_cpu_features *f = luhd_cpu();
    return f->avx512f && f->avx512bw && f->avx512vl && f->avx512_bf16;
}

static long panel_pairs(long k) { return (k + 1) / 2; }

size_t luhd_bf16_gemm_x_bytes(long k, long m) {
    const size_t panels = (size_t)((m + MR - 1) / MR);
    return panels * (size_t)panel_pairs(k) * MR * 4 + 64;
}

static inline uint32_t bf16_rne(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (b >> 16) | 0x40;   /* NaN stays a quiet NaN */
    return (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
}

void luhd_bf16_gemm_pack_x(const float *x, long ldx, long k, long m, long i0, long i1, void *xp) {
    const long pairs = panel_pairs(k);
    uint32_t *base = (uint32_t *)xp;
    for (long i = i0; i < i1; i++) {
        const long panel = i / MR, lane = i % MR;
        uint32_t *dst = base + (size_t)panel * (size_t)pairs * MR + lane;
        const float *row = x + i * ldx;
        for (long p = 0; p < pairs; p++) {
            const uint32_t lo = bf16_rne(row[2 * p]);
            const uint32_t hi = 2 * p + 1 < k ? bf16_rne(row[2 * p + 1]) : 0;
            dst[(size_t)p * MR] = lo | hi << 16;
        }
    }
    /* Rows past m in the last panel are zero. */
    if (i1 == m && m % MR != 0) {
        const long panel = m / MR;
        uint32_t *p0 = base + (size_t)panel * (size_t)pairs * MR;
        for (long p = 0; p < pairs; p++)
            for (long lane = m % MR; lane < MR; lane++) p0[(size_t)p * MR + lane] = 0;
    }
}

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))), apply_to = function)

static inline __attribute__((always_inline)) void micro(const int NR, const uint16_t *w, long ldw, long pairs,
                                                        const uint32_t *xpanel, float tmp[NR_MAX][MR]) {
    __m512 acc[NR_MAX][2];
    for (int r = 0; r < NR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t *wr[NR_MAX];
    for (int r = 0; r < NR; r++) wr[r] = w + r * ldw;
    for (long p = 0; p < pairs; p++) {
        const __m512bh xa = (__m512bh)_mm512_loadu_si512(xpanel + p * MR);
        const __m512bh xb = (__m512bh)_mm512_loadu_si512(xpanel + p * MR + 16);
        for (int r = 0; r < NR; r++) {
            int32_t pair;
            memcpy(&pair, wr[r] + 2 * p, 4);
            const __m512bh wv = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xa, wv);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xb, wv);
        }
    }
    for (int r = 0; r < NR; r++) {
        _mm512_storeu_ps(tmp[r], acc[r][0]);
        _mm512_storeu_ps(tmp[r] + 16, acc[r][1]);
    }
}

static void micro_any(int nr, const uint16_t *w, long ldw, long pairs, const uint32_t *xpanel, float tmp[NR_MAX][MR]) {
    switch (nr) {
    case 12: micro(12, w, ldw, pairs, xpanel, tmp); break;
    case 11: micro(11, w, ldw, pairs, xpanel, tmp); break;
    case 10: micro(10, w, ldw, pairs, xpanel, tmp); break;
    case 9: micro(9, w, ldw, pairs, xpanel, tmp); break;
    case 8: micro(8, w, ldw, pairs, xpanel, tmp); break;
    case 7: micro(7, w, ldw, pairs, xpanel, tmp); break;
    case 6: micro(6, w, ldw, pairs, xpanel, tmp); break;
    case 5: micro(5, w, ldw, pairs, xpanel, tmp); break;
    case 4: micro(4, w, ldw, pairs, xpanel, tmp); break;
    case 3: micro(3, w, ldw, pairs, xpanel, tmp); break;
    case 2: micro(2, w, ldw, pairs, xpanel, tmp); break;
    default: micro(1, w, ldw, pairs, xpanel, tmp); break;
    }
}

void luhd_bf16_gemm(const uint16_t *w, long ldw, long n0, long n1, long k, const void *xp, long m,
                    float *y, long ldy) {
    if (n1 <= n0 || m <= 0 || k <= 0 || (k & 1)) return;
    const long pairs = panel_pairs(k), panels = (m + MR - 1) / MR;
    const uint32_t *xbase = (const uint32_t *)xp;
    float tmp[NR_MAX][MR];
    for (long k0 = 0; k0 < k; k0 += KC) {
        const long kc = k - k0 < KC ? k - k0 : KC;
        for (long n = n0; n < n1; n += NR_MAX) {
            const int nr = n1 - n < NR_MAX ? (int)(n1 - n) : NR_MAX;
            for (long pnl = 0; pnl < panels; pnl++) {
                const uint32_t *xpanel = xbase + (size_t)pnl * (size_t)pairs * MR + (size_t)(k0 / 2) * MR;
                micro_any(nr, w + n * ldw + k0, ldw, kc / 2, xpanel, tmp);
                const long i0 = pnl * MR, rows = m - i0 < MR ? m - i0 : MR;
                for (long l = 0; l < rows; l++) {
                    float *yr = y + (i0 + l) * ldy + n;
                    if (k0 == 0) {
                        for (int r = 0; r < nr; r++) yr[r] = tmp[r][l];
                    } else {
                        for (int r = 0; r < nr; r++) yr[r] += tmp[r][l];
                    }
                }
            }
        }
    }
}

#pragma clang attribute pop
