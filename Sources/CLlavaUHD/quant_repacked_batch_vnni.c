/* Int8 VNNI matrix-vector kernels for a batch of rows of x (batched decode: one row per
 * session of the pass) over the row-interleaved Q8_0 and Q4_0 copies of quant_repack.c
 * (declared in quant_kernels.h).
 *
 * Each weight row's group of 256 weights is loaded and unpacked once (Q8_0: 4 loads and the
 * sign flip; Q4_0: 2 loads and the nibble split; both: the 8 f16 scales widened, and for Q4_0
 * spread to the lanes) and its integer dot products are taken with every row of x of the batch
 * (up to LUHD_QUANT_BATCH_ROWS), each row keeping its own accumulators in registers. Every
 * (weight row, row of x) pair goes through exactly the operations of the one-row kernels
 * (quant_repacked_vnni.c, themselves equal to quant_matvec_vnni.c's on the stored layout) in
 * the same order: the same vpdpbusd sums per block, the same scale products d * dx, the same
 * multiply-adds into the same accumulators and the same final sums, so each row's results are
 * bit-identical to that row computed alone. x is prepared as for those kernels
 * (luhd_quant_prepare with LUHD_QK_INT8_VNNI), one prepared row every `prepared_row_bytes`. */
#include "quant_kernels.h"
#include <immintrin.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))), apply_to = function)
#include "quant_vnni_common.h"

#define AI static inline __attribute__((always_inline))

/* ---- Q8_0: a group of one row = 16 bytes of f16 scales + 256 int8 quants (quant_repack.c) ----
 * Per group and row of x, as q8_0_rp: s = d * dx (8 blocks), the offset term d * c, then per
 * 64 quants (blocks 2k, 2k + 1: lanes 0-7 and 8-15) one vpdpbusd, its conversion and a
 * multiply-add with the block scales spread to the lanes, into accumulator k & 1. */
AI void q8_0_batch_row(const uint8_t *wrow, long ng, const uint8_t *prep, size_t ps, int m, float *y, long ldy) {
    const __m512i k128 = _mm512_set1_epi8((char)0x80);
    __m512i pidx[4];
    for (int k = 0; k < 4; k++) {
        const int a = 2 * k, c = 2 * k + 1;
        pidx[k] = _mm512_set_epi32(c, c, c, c, c, c, c, c, a, a, a, a, a, a, a, a);
    }
    __m512 acc[LUHD_QUANT_BATCH_ROWS][2];
    __m256 oacc[LUHD_QUANT_BATCH_ROWS];
    for (int i = 0; i < m; i++) { acc[i][0] = acc[i][1] = _mm512_setzero_ps(); oacc[i] = _mm256_setzero_ps(); }
    for (long g = 0; g < ng; g++) {
        const uint8_t *b = wrow + (size_t)g * 4 * 272;
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
        __m512i wq[4];
        for (int k = 0; k < 4; k++) wq[k] = _mm512_xor_si512(_mm512_loadu_si512(b + 16 + 64 * k), k128);
        for (int i = 0; i < m; i++) {
            const uint8_t *row = prep + (size_t)i * ps;
            const float *gs = (const float *)(row + ng * 256) + 16 * g;
            const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(d8, _mm256_loadu_ps(gs)));
            oacc[i] = _mm256_fmadd_ps(d8, _mm256_loadu_ps(gs + 8), oacc[i]);
            const uint8_t *xq = row + g * 256;
            for (int k = 0; k < 4; k++) {
                const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[k], _mm512_loadu_si512(xq + 64 * k));
                acc[i][k & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(pidx[k], s), acc[i][k & 1]);
            }
        }
    }
    for (int i = 0; i < m; i++) {
        const __m128 o = _mm_add_ps(_mm256_castps256_ps128(oacc[i]), _mm256_extractf128_ps(oacc[i], 1));
        y[i * ldy] = hsum16(_mm512_add_ps(acc[i][0], acc[i][1])) - ((o[0] + o[2]) + (o[1] + o[3]));
    }
}

/* ---- Q4_0: a group of one row = 16 bytes of f16 scales + 64 nibble bytes of blocks 0-3 + 64
 * of blocks 4-7 (quant_repack.c) ----
 * Per group and row of x, as q4_0_rp: the offset term d * c, two vpdpbusd per half (low then
 * high nibbles, 128-bit lane c = block c), each half converted and multiply-added with the
 * scales d * dx spread to the lanes. */
AI void q4_0_batch_row(const uint8_t *wrow, long ng, const uint8_t *prep, size_t ps, int m, float *y, long ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i spreadA = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i spreadB = _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4);
    __m512 acc[LUHD_QUANT_BATCH_ROWS];
    __m256 oacc[LUHD_QUANT_BATCH_ROWS];
    for (int i = 0; i < m; i++) { acc[i] = _mm512_setzero_ps(); oacc[i] = _mm256_setzero_ps(); }
    for (long g = 0; g < ng; g++) {
        const uint8_t *b = wrow + (size_t)g * 4 * 144;
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
        const __m512 dA = _mm512_permutexvar_ps(spreadA, _mm512_castps256_ps512(d8));
        const __m512 dB = _mm512_permutexvar_ps(spreadB, _mm512_castps256_ps512(d8));
        const __m512i t0 = _mm512_loadu_si512(b + 16), t1 = _mm512_loadu_si512(b + 80);
        const __m512i w0 = _mm512_and_si512(t0, m4), w1 = _mm512_and_si512(_mm512_srli_epi16(t0, 4), m4);
        const __m512i w2 = _mm512_and_si512(t1, m4), w3 = _mm512_and_si512(_mm512_srli_epi16(t1, 4), m4);
        for (int i = 0; i < m; i++) {
            const uint8_t *gp = prep + (size_t)i * ps + g * Q4_0_GROUP_BYTES;
            const float *dxs = (const float *)(gp + 256);
            oacc[i] = _mm256_fmadd_ps(d8, _mm256_loadu_ps(dxs + 32), oacc[i]);
            __m512i dotA = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(gp));
            dotA = _mm512_dpbusd_epi32(dotA, w1, _mm512_loadu_si512(gp + 64));
            __m512i dotB = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, _mm512_loadu_si512(gp + 128));
            dotB = _mm512_dpbusd_epi32(dotB, w3, _mm512_loadu_si512(gp + 192));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotA), _mm512_mul_ps(dA, _mm512_loadu_ps(dxs)), acc[i]);
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dotB), _mm512_mul_ps(dB, _mm512_loadu_ps(dxs + 16)), acc[i]);
        }
    }
    for (int i = 0; i < m; i++) {
        const __m128 o = _mm_add_ps(_mm256_castps256_ps128(oacc[i]), _mm256_extractf128_ps(oacc[i], 1));
        y[i * ldy] = hsum16(acc[i]) - ((o[0] + o[2]) + (o[1] + o[3]));
    }
}

/* Every weight row of [r0, r1) against the m rows of x: the row's groups are at
 * blk + g * 4G + j * G within its row block (G the group bytes). The switch makes m a constant
 * in each copy of the kernel, so its loops over the rows of x unroll and the accumulators stay
 * in registers. */
#define BATCH_ROWS(NAME, KERNEL, GROUP)                                                                        \
    static void NAME(const uint8_t *w, size_t rb, long r0, long r1, long cols, const uint8_t *prep, size_t ps, \
                     int m, float *y, long ldy) {                                                              \
        const long ng = cols / 256;                                                                            \
        for (long r = r0; r < r1; r++) {                                                                       \
            const uint8_t *wrow = w + (size_t)(r / 4) * 4 * rb + (size_t)(GROUP) * (size_t)(r % 4);            \
            switch (m) {                                                                                       \
            case 1: KERNEL(wrow, ng, prep, ps, 1, y + r, ldy); break;                                          \
            case 2: KERNEL(wrow, ng, prep, ps, 2, y + r, ldy); break;                                          \
            case 3: KERNEL(wrow, ng, prep, ps, 3, y + r, ldy); break;                                          \
            case 4: KERNEL(wrow, ng, prep, ps, 4, y + r, ldy); break;                                          \
            case 5: KERNEL(wrow, ng, prep, ps, 5, y + r, ldy); break;                                          \
            case 6: KERNEL(wrow, ng, prep, ps, 6, y + r, ldy); break;                                          \
            case 7: KERNEL(wrow, ng, prep, ps, 7, y + r, ldy); break;                                          \
            default: KERNEL(wrow, ng, prep, ps, 8, y + r, ldy); break;                                         \
            }                                                                                                  \
        }                                                                                                      \
    }
BATCH_ROWS(q8_0_batch, q8_0_batch_row, 272)
BATCH_ROWS(q4_0_batch, q4_0_batch_row, 144)
#undef BATCH_ROWS

int luhd_quant_batch_supports(int format) { return format == LUHD_QF_Q8_0 || format == LUHD_QF_Q4_0; }

void luhd_quant_matvec_repacked_batch(int format, const void *w, size_t row_bytes, long row_begin, long row_end, long cols,
                                      const void *prepared, size_t prepared_row_bytes, int m, float *y, long ldy) {
    if (m < 1 || m > LUHD_QUANT_BATCH_ROWS || row_end <= row_begin || row_begin % 4 != 0 || row_end % 4 != 0) return;
    const uint8_t *wb = (const uint8_t *)w, *prep = (const uint8_t *)prepared;
    switch (format) {
    case LUHD_QF_Q8_0: q8_0_batch(wb, row_bytes, row_begin, row_end, cols, prep, prepared_row_bytes, m, y, ldy); break;
    case LUHD_QF_Q4_0: q4_0_batch(wb, row_bytes, row_begin, row_end, cols, prep, prepared_row_bytes, m, y, ldy); break;
    default: break;
    }
}
#pragma clang attribute pop
