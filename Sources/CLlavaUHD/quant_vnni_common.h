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

/* How far ahead of its reads a one-row kernel on a stored layout (Q4_K, Q6_K) or the Q4_K one on
 * its interleaved copy prefetches its weight stream, in bytes (1 KiB measured best of 0.5-4 KiB on
 * a 2-vCPU EPYC (Zen 4), under load). The Q8_0 / Q4_0 kernels on the interleaved copies run
 * without with one row of x and ask for the next row block in L2 with several
 * (quant_repacked_vnni.c). */
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
size_t luhd_quant_vnni_g8_row_stride(long cols);

/* ---- Q8_0 and Q4_0: groups of 8 blocks of 32 (256 weights) ----
 * Every Q8_0 / Q4_0 kernel (stored and row-interleaved layouts, 1-4 rows of x) computes a row as
 *   y = hsum8(Σ_g  f32(S_g) * (d_g * dx_g))  + the blocks after the last whole group,
 * 8 lanes, lane b = block b of each group: S_g,b = Σ_j q_bj · xq_bj is the exact integer dot
 * product of block b (q the signed weights: Q8_0's int8, Q4_0's nibble − 8; xq the int8 image of
 * x), d the block's f16 scale widened, dx the x block's scale; one product d·dx, one fused
 * multiply-add per lane and group, then hsum8. Every integer step is exact, so any way of
 * forming S gives the same bits: the layouts and row counts differ only in how they load.
 *
 * vpdpbusd takes unsigned weights (Q8_0: w + 128 by flipping the sign bit; Q4_0: the nibble q + 8
 * as stored) and signed x; the offset (−128 or −8 times Σ xq_b) is an integer the preparation
 * stores per block and the first dot product starts from.
 *
 * Operands: 4 registers of 64 bytes per group; 32-bit lane l = b + 8h (block b = 0..7, half
 * h = 0, 1) of operand k holds the 4 weights g8_base(k) + 4h + e (e = 0..3) of block b, so that
 * after the 4 dot products lanes b and b + 8 together hold block b's sum (for Q4_0: the low
 * nibbles of bytes 4h..4h+3 of a block's 16 are operand 0, their high nibbles operand 1; of bytes
 * 8 + 4h.. operands 2 and 3).
 * Prepared x of one row (G8_PREP_BYTES per group): the 4 operands of x (256 int8 values in the
 * lanes above), 8 int32 offsets, 8 f32 dx; then the blocks after the last whole group: 32 int8
 * values each (natural order), then their dx. */
#define G8_PREP_BYTES (256 + 32 + 32)
/* The first weight of a block that operand k holds in its half-0 lane (0, 16, 8, 24). */
static inline int g8_base(int k) { return 8 * (k >> 1) + 16 * (k & 1); }

/* Index vectors of g8_transpose: lane b + 8h of operand k takes 32-bit word g8_base(k) / 4 + h
 * of block b, whose words are 8 (b % 4) .. 8 (b % 4) + 7 of the register pair holding blocks 0-3
 * (z[0], z[1]) or 4-7 (z[2], z[3]). */
static inline void g8_transpose_index(__m512i idx[4]) {
    for (int k = 0; k < 4; k++) {
        int32_t ix[16];
        for (int l = 0; l < 16; l++) ix[l] = 8 * (l % 4) + g8_base(k) / 4 + l / 8;
        idx[k] = _mm512_loadu_si512(ix);
    }
}

/* The 4 operands o of a group from its 256 weight bytes in natural order, z[p] holding blocks 2p
 * and 2p + 1 (32 bytes each). */
static inline __attribute__((always_inline)) void g8_transpose(const __m512i z[4], const __m512i idx[4], __m512i o[4]) {
    for (int k = 0; k < 4; k++)
        o[k] = _mm512_mask_blend_epi32(0xF0F0, _mm512_permutex2var_epi32(z[0], idx[k], z[1]),
                                       _mm512_permutex2var_epi32(z[2], idx[k], z[3]));
}

/* f32 block sums S of one group (8 lanes) for the 4 unsigned weight operands w and the group's
 * prepared x at gp. */
static inline __attribute__((always_inline)) __m256 g8_block_sums(const __m512i w[4], const uint8_t *gp) {
    __m512i a = _mm512_dpbusd_epi32(_mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(gp + 256))), w[0],
                                    _mm512_loadu_si512(gp));
    a = _mm512_dpbusd_epi32(a, w[1], _mm512_loadu_si512(gp + 64));
    __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[2], _mm512_loadu_si512(gp + 128));
    c = _mm512_dpbusd_epi32(c, w[3], _mm512_loadu_si512(gp + 192));
    const __m512i s = _mm512_add_epi32(a, c);
    return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1)));
}

/* The block sums S of one group for two weight rows (operands wa, wb) and one row of x at gp,
 * as 16 int32 lanes: row a's block b in lane b, row b's in lane 8 + b. The same exact integers as
 * g8_block_sums (integer sums in any order), each operand of x loaded once for both rows. */
static inline __attribute__((always_inline)) __m512i g8_pair_sums(const __m512i wa[4], const __m512i wb[4],
                                                                  const uint8_t *gp) {
    const __m512i off = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(gp + 256)));
    __m512i a = off, b = off;
    for (int k = 0; k < 4; k++) {
        const __m512i xk = _mm512_loadu_si512(gp + 64 * k);
        a = _mm512_dpbusd_epi32(a, wa[k], xk);
        b = _mm512_dpbusd_epi32(b, wb[k], xk);
    }
    /* lanes 0-7 of a and of b beside lanes 8-15 of a and of b */
    return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE));
}

/* acc + S · (d8 · dx) for one group of one weight row (scales d8) and one row of x. */
static inline __attribute__((always_inline)) __m256 g8_accumulate(__m256 acc, const __m512i w[4], __m256 d8,
                                                                  const uint8_t *gp) {
    return _mm256_fmadd_ps(g8_block_sums(w, gp), _mm256_mul_ps(d8, _mm256_loadu_ps((const float *)(gp + 288))), acc);
}

/* The sum of 8 lanes in a fixed order. */
static inline float hsum8(__m256 v) {
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    return (b[0] + b[2]) + (b[1] + b[3]);
}
#endif
