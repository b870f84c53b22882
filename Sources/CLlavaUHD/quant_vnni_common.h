/* Helpers and prepared-x layouts shared by the int8 VNNI matrix-vector kernels
 * (quant_matvec_vnni.c for the stored layouts, quant_repacked_vnni.c for the row-interleaved
 * ones). Include inside an AVX-512 target region. Not a public header. */
#ifndef CLLAVAUHD_QUANT_VNNI_COMMON_H
#define CLLAVAUHD_QUANT_VNNI_COMMON_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t load16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* How far ahead of its reads a matrix-vector kernel on a stored layout, the Q4_K one on its copy,
 * or a multi-row kernel on an interleaved copy, prefetches its weight stream, in bytes (1 KiB measured best of 0.5-4 KiB
 * on a 2-vCPU EPYC (Zen 4), under load). The one-row Q8_0 / Q4_0 kernels on the interleaved
 * copies run without (quant_repacked_vnni.c). */
#define DECODE_PREFETCH_BYTES 1024

/* Prefetches the n bytes at p (one hint per 64-byte line) into L1. */
static inline __attribute__((always_inline)) void prefetch_span(const uint8_t *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T0);
}

static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)load16(p)); }

static inline float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* The f32 scales d * sc_j (sub-blocks j = 0..7) and mins dmin * m_j of a Q4_K super-block
 * header h as stored (f16 d, f16 dmin, the 12 bytes of luhd_q4k_scale_min), four scale or min
 * bytes at a time. Every product is exact in f32 (a 6-bit integer times an f16), so any
 * decoding that forms the same products gives the same bits. */
static inline __attribute__((always_inline)) void q4_k_scales_f32(const uint8_t *h, __m256 *scf, __m256 *mnf) {
    const float d = h2f(h), dmin = h2f(h + 2);
    uint32_t a0, a1, a2;
    memcpy(&a0, h + 4, 4);
    memcpy(&a1, h + 8, 4);
    memcpy(&a2, h + 12, 4);
    const uint32_t sc03 = a0 & 0x3F3F3F3Fu, mn03 = a1 & 0x3F3F3F3Fu;
    const uint32_t sc47 = (a2 & 0x0F0F0F0Fu) | ((a0 >> 2) & 0x30303030u);
    const uint32_t mn47 = ((a2 >> 4) & 0x0F0F0F0Fu) | ((a1 >> 2) & 0x30303030u);
    *scf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)sc47, (int)sc03))), _mm256_set1_ps(d));
    *mnf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)mn47, (int)mn03))), _mm256_set1_ps(dmin));
}

/* Lane permutations of the Q4_K products: pidx[c] spreads f32 lane 2c over lanes 0-7 and lane
 * 2c + 1 over lanes 8-15 (the two sub-blocks of 32 one 64-weight dot product covers). */
static inline void q4_k_lane_index(__m512i pidx[4]) {
    for (int c = 0; c < 4; c++)
        pidx[c] = _mm512_set_epi32(2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1,
                                   2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c);
}

/* One Q4_K super-block s of one weight row against m (1..4) rows of x prepared by
 * luhd_quant_prepare_vnni_k (row i at prep + i * pstride, `cols` columns): wq[c] holds the
 * unsigned 4-bit weights of sub-blocks 2c and 2c + 1 (64 bytes, in the order of the prepared x),
 * scf / mnf the f32 scales and mins (q4_k_scales_f32). For each row i of x:
 *   acc[i][c & 1] += f32(dot_c) * perm(scf * dx32)    (16 lanes, c = 0..3 in order)
 *   macc[i]       += mnf * xs32                        (8 lanes)
 * Every Q4_K kernel (stored and row-interleaved layouts) accumulates through this, so their
 * results are the same bits. */
static inline __attribute__((always_inline)) void q4_k_accumulate(const __m512i wq[4], __m256 scf, __m256 mnf,
                                                                  const __m512i pidx[4], const uint8_t *prep,
                                                                  size_t pstride, long cols, long s, int m,
                                                                  __m512 acc[][2], __m256 macc[]) {
    const long nb = cols / 32;
    for (int i = 0; i < m; i++) {
        const uint8_t *row = prep + (size_t)i * pstride;
        const float *dx32 = (const float *)(row + cols) + 8 * s, *xs32 = (const float *)(row + cols) + nb + 8 * s;
        const __m512 sl = _mm512_castps256_ps512(_mm256_mul_ps(scf, _mm256_loadu_ps(dx32)));
        macc[i] = _mm256_fmadd_ps(mnf, _mm256_loadu_ps(xs32), macc[i]);
        const uint8_t *xq = row + 256 * s;
        for (int c = 0; c < 4; c++) {
            const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[c], _mm512_loadu_si512(xq + 64 * c));
            acc[i][c & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(pidx[c], sl), acc[i][c & 1]);
        }
    }
}

/* The output of a Q4_K row from its accumulators: the sum of the 32 product lanes minus the sum
 * of the 8 min lanes, in a fixed order. */
static inline float q4_k_result(__m512 acc0, __m512 acc1, __m256 macc) {
    const __m128 m2 = _mm_add_ps(_mm256_castps256_ps128(macc), _mm256_extractf128_ps(macc, 1));
    return hsum16(_mm512_add_ps(acc0, acc1)) - ((m2[0] + m2[2]) + (m2[1] + m2[3]));
}

/* Lane permutations of the products with one scale per 16 weights (Q6_K): pidx[k] spreads f32
 * lanes 4k..4k+3 over lanes 0-3, 4-7, 8-11, 12-15. */
static inline void k16_lane_index(__m512i pidx[4]) {
    for (int k = 0; k < 4; k++)
        pidx[k] = _mm512_set_epi32(4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 2, 4 * k + 2, 4 * k + 2, 4 * k + 2,
                                   4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k, 4 * k, 4 * k, 4 * k);
}

/* One Q6_K super-block s of one weight row against m (1..4) rows of x prepared by
 * luhd_quant_prepare_vnni_k: wq[k] holds the unsigned 6-bit weights q (stored q - 32 + 32)
 * 64k..64k+63 of the super-block, scf the 16 f32 scales d * sc_j. For each row i of x:
 *   acc[i][k & 1] += f32(dot_k) * perm(scf * dx16)    (16 lanes, k = 0..3 in order)
 *   oacc[i]       += scf * xs16                        (the -32 offset, applied at the end)
 * Shared by the Q6_K kernels of both layouts, so their results are the same bits. */
static inline __attribute__((always_inline)) void q6_k_accumulate(const __m512i wq[4], __m512 scf, const __m512i pidx[4],
                                                                  const uint8_t *prep, size_t pstride, long cols, long s,
                                                                  int m, __m512 acc[][2], __m512 oacc[]) {
    const long nb = cols / 32;
    for (int i = 0; i < m; i++) {
        const uint8_t *row = prep + (size_t)i * pstride;
        const float *dx16 = (const float *)(row + cols) + 2 * nb + 16 * s;
        const float *xs16 = dx16 + 2 * nb;
        const __m512 sl = _mm512_mul_ps(scf, _mm512_loadu_ps(dx16));
        oacc[i] = _mm512_fmadd_ps(scf, _mm512_loadu_ps(xs16), oacc[i]);
        const uint8_t *xq = row + 256 * s;
        for (int k = 0; k < 4; k++) {
            const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[k], _mm512_loadu_si512(xq + 64 * k));
            acc[i][k & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(pidx[k], sl), acc[i][k & 1]);
        }
    }
}

/* The output of a Q6_K row from its accumulators. */
static inline float q6_k_result(__m512 acc0, __m512 acc1, __m512 oacc) {
    return hsum16(_mm512_add_ps(acc0, acc1)) - 32.0f * hsum16(oacc);
}

/* Bytes per prepared row of x (see luhd_quant_prepare_vnni_* in quant_matvec_vnni.c). */
size_t luhd_quant_vnni_k_row_stride(long cols);
size_t luhd_quant_vnni_q4_row_stride(long cols);
size_t luhd_quant_vnni_q8_row_stride(long cols);

/* Bytes per Q4_0 group of the prepared x: 256 int8 values, 32 f32 dx, 8 f32 offsets. */
#define Q4_0_GROUP_BYTES (256 + 64 + 64 + 32)
#endif
