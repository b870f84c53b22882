/* Float32 products against BF16 weights with AVX-512 FMA (see include/bf16w_sgemm.h).
 *
 * Micro-kernel: 32 rows of x (two zmm of 16 lanes, one lane per row) against NR = 12 weight
 * rows: for each column j, two vector loads of packed x and 12 broadcasts of widened weights
 * feed 24 fused multiply-adds into 24 accumulators. Columns run in blocks of KC: each block of
 * 12 weight rows is widened once into a [12][KC] float32 block (12 KB, stays in L1)
 * while every x panel passes it. Each block's sums start from zero (one fused multiply-add
 * chain per output over the block's columns in order) and are added, block after block, to a
 * transposed partial-sum buffer (whole vectors), as OpenBLAS adds its K blocks: a chain over
 * all k columns would carry about √(k/KC) times the rounding error. The sums are written
 * into y row by row at the end. */
#include "bf16w_sgemm.h"
#include "blas_loader.h"
#include <immintrin.h>
#include <string.h>

#define MR 32
#define NR 12
#define KC LUHD_BF16W_SGEMM_KC

int luhd_bf16w_sgemm_available(void) {
    const luhd_cpu_features *f = luhd_cpu();
    return f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq;
}

static long panels_of(long m) { return (m + MR - 1) / MR; }

size_t luhd_bf16w_sgemm_x_bytes(long k, long m) {
    return (size_t)panels_of(m) * (size_t)k * MR * 4 + 64;
}

size_t luhd_bf16w_sgemm_work_bytes(long count, long m) {
    const size_t blocks = (size_t)((count + NR - 1) / NR);
    return ((size_t)KC * NR + blocks * NR * (size_t)panels_of(m) * MR) * 4 + 64;
}

void luhd_bf16w_sgemm_pack_x(const float *x, long ldx, long k, long m, long i0, long i1, float *xp) {
    for (long i = i0; i < i1; i++) {
        float *dst = xp + (size_t)(i / MR) * (size_t)k * MR + i % MR;
        const float *row = x + i * ldx;
        for (long j = 0; j < k; j++) dst[(size_t)j * MR] = row[j];
    }
    /* Rows past m in the last panel are zero. */
    if (i1 == m && m % MR != 0) {
        float *p0 = xp + (size_t)(m / MR) * (size_t)k * MR;
        for (long j = 0; j < k; j++)
            for (long lane = m % MR; lane < MR; lane++) p0[(size_t)j * MR + lane] = 0;
    }
}

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)

/* The sums of one block of kc columns, one fused multiply-add chain per output from zero, stored
 * (first block) or added to the partial sums at yt + r * ldt (32 floats per weight row r);
 * weight row r's kc values at wp + r * KC. */
static inline __attribute__((always_inline)) void micro(long kc, const float *xpanel, const float *wp,
                                                        float *yt, long ldt, int first) {
    __m512 acc[NR][2];
    for (int r = 0; r < NR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long j = 0; j < kc; j++) {
        const __m512 xa = _mm512_loadu_ps(xpanel + j * MR);
        const __m512 xb = _mm512_loadu_ps(xpanel + j * MR + 16);
        for (int r = 0; r < NR; r++) {
            const __m512 wv = _mm512_set1_ps(wp[r * KC + j]);
            acc[r][0] = _mm512_fmadd_ps(xa, wv, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xb, wv, acc[r][1]);
        }
    }
    for (int r = 0; r < NR; r++) {
        if (!first) {
            acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(yt + r * ldt), acc[r][0]);
            acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(yt + r * ldt + 16), acc[r][1]);
        }
        _mm512_storeu_ps(yt + r * ldt, acc[r][0]);
        _mm512_storeu_ps(yt + r * ldt + 16, acc[r][1]);
    }
}

/* wp[r][j] = float32 of W row (n + r), column (k0 + j), for r < nr, j < kc (row stride KC);
 * rows nr..NR-1 are zero. */
static void widen_block(const uint16_t *w, long ldw, long n, int nr, long k0, long kc, float *wp) {
    for (int r = 0; r < nr; r++) {
        const uint16_t *src = w + (n + r) * ldw + k0;
        float *dst = wp + r * KC;
        long j = 0;
        for (; j + 16 <= kc; j += 16) {
            const __m512i v = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + j))), 16);
            _mm512_storeu_si512(dst + j, v);
        }
        for (; j < kc; j++) {
            const uint32_t bits = (uint32_t)src[j] << 16;
            memcpy(dst + j, &bits, 4);
        }
    }
    for (int r = nr; r < NR; r++) memset(wp + r * KC, 0, (size_t)kc * 4);
}

void luhd_bf16w_sgemm(const uint16_t *w, long ldw, long n0, long n1, long k, const float *xp, long m,
                      float *y, long ldy, float *work) {
    if (n1 <= n0 || m <= 0 || k <= 0) return;
    const long panels = panels_of(m), ldt = panels * MR;
    const long blocks = (n1 - n0 + NR - 1) / NR;
    float *wp = work, *yt = work + KC * NR;
    for (long k0 = 0; k0 < k; k0 += KC) {
        const long kc = k - k0 < KC ? k - k0 : KC;
        for (long b = 0; b < blocks; b++) {
            const long n = n0 + b * NR;
            const int nr = n1 - n < NR ? (int)(n1 - n) : NR;
            widen_block(w, ldw, n, nr, k0, kc, wp);
            /* The next block's weights (12 short rows far apart, which the hardware prefetchers
             * do not follow) start moving into L2 while this block's panels run. */
            const long nn = b + 1 < blocks ? n + NR : n0, nk = b + 1 < blocks ? k0 : k0 + KC;
            if (nk < k) {
                const long nnr = n1 - nn < NR ? n1 - nn : NR, nkc = k - nk < KC ? k - nk : KC;
                for (long r = 0; r < nnr; r++)
                    for (long j = 0; j < nkc; j += 32) _mm_prefetch((const char *)(w + (nn + r) * ldw + nk + j), _MM_HINT_T1);
            }
            float *ytb = yt + (size_t)b * NR * (size_t)ldt;
            for (long p = 0; p < panels; p++)
                micro(kc, xp + (size_t)p * (size_t)k * MR + (size_t)k0 * MR, wp, ytb + p * MR, ldt, k0 == 0);
        }
    }
    for (long b = 0; b < blocks; b++) {
        const long n = n0 + b * NR;
        const int nr = n1 - n < NR ? (int)(n1 - n) : NR;
        const float *ytb = yt + (size_t)b * NR * (size_t)ldt;
        for (long i = 0; i < m; i++) {
            float *yr = y + i * ldy + n;
            for (int r = 0; r < nr; r++) yr[r] = ytb[r * ldt + i];
        }
    }
}

#pragma clang attribute pop
