/* Integer matrix-vector kernels with AVX2 (vpmaddubsw + vpmaddwd) for Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0, IQ4_NL, IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K: LUHD_QK_INT8_AVX2, for CPUs without AVX-512 VNNI (Zen 2/3,
 * Intel client cores). The numeric contract is LUHD_QK_INT8_VNNI's: x is quantized once per call
 * to int8 per 32-element block (dx = max|x| / 127, round to nearest even, clamped to +-127; a
 * block holding an infinity or a NaN gets dx = NaN), every block's dot product with the weights
 * is an exact int32, and the scales are applied in f32, so the result is W . x~ up to f32
 * rounding (x~ = dx * round(x / dx)).
 *
 * Why integers: the f32 kernels (quant_matvec_f32_body.h) widen every weight to f32 and spend
 * about one multiply-add per weight and row of x, which on two AVX2 cores is slower than memory
 * delivers the weights; vpmaddubsw multiplies 32 byte pairs and adds neighbours in one
 * instruction (BENCHMARKS.md notes:matvec9 and notes:decode10 have the measurements).
 *
 * vpmaddubsw multiplies unsigned bytes (first operand) by signed bytes and adds each pair into
 * an int16 with saturation; no sum here reaches the int16 limit (32767):
 *   Q4_0, Q4_1, Q4_K  unsigned nibbles q (0..15) times x (|x| <= 127): a pair <= 2*15*127 = 3810;
 *               two such results are added in int16 (<= 7620), then two rounds of vphaddw
 *               (<= 30480) before vpmaddwd widens them; Q4_0's -8 becomes -8 * (sum of the
 *               block's x), an integer the kernel adds; Q4_1's offset m is applied in f32 to dx X
 *               (X the sum of the block's int8 x), as Q4_K's mins.
 *   Q5_0, Q5_1, Q5_K  unsigned 5-bit q (0..31): a pair <= 2*31*127 = 7874, two added (<= 15748),
 *               one round of vphaddw (<= 31496), then vpmaddwd; offsets as Q4_0 (-16), Q4_1, Q4_K.
 *   Q8_0, IQ4_NL, IQ4_XS  the sign trick: |w| (Q8_0 0..128, -128 giving 128; the IQ4 values
 *               -127..113 looked up by vpshufb) times x with w's sign: a pair <= 2*128*127 =
 *               32512; each result is widened by vpmaddwd on its own.
 *   Q6_K        unsigned 6-bit q (0..63) times x: a pair <= 2*63*127 = 16002, widened by vpmaddwd
 *               against the sub-block scales (|sc| <= 128): <= 2*16002*128 in int32; the -32
 *               becomes -32 * sum(sc * (sum of x per 16)), an integer from one more vpmaddwd.
 *   Q3_K        as Q6_K with u = low 2 bits + 4 * high bit (0..7, the weight u - 4) and the signed
 *               6-bit scales (|sc| <= 32): a pair <= 2*7*127 = 1778; the -4 as Q6_K's -32.
 *   Q2_K        as Q6_K with the 2-bit q (0..3) and the 4-bit scales (0..15): a pair <= 2*3*127 =
 *               762; its 4-bit mins m per 16 give M = sum m * (sum of x per 16), one more vpmaddwd.
 * Every int32 block sum is exact (|S| < 2^31); it is then converted to f32 (exact below 2^24).
 *
 * Layout of the work: a group of 8 blocks of 32 (256 weights: a super-block of the K formats and
 * of IQ4_XS, 8 blocks of the others) is processed as 4 pairs, pair k holding blocks k and k + 4: one
 * 256-bit register holds elements 0..15 of block k (low 128 bits) and of block k + 4 (high 128
 * bits), another their elements 16..31. After the integer sums block j's exact sum S_j ends in
 * lane j of one register; one conversion, one scale product and one multiply-add per group and
 * row of x follow:
 *   Q4_0, Q5_0, Q8_0, IQ4_NL  y = hsum8(sum_g f32(S_g) * (d_g * dx_g)) + the blocks after the
 *               last whole group
 *   IQ4_XS      y = hsum8(sum_s f32(S_s) * (s_s * dx_s)), s_s = d * (6-bit scale - 32) of
 *               sub-block s, an exact f32 product
 *   Q4_1, Q5_1  the same plus hsum8(sum_g m_g * (dx X)_g), added before the blocks after the
 *               last whole group
 *   Q4_K, Q5_K  y = hsum8(sum_s f32(S_s) * ((d sc)_s * dx_s)) - hsum8(sum_s (dmin m)_s * (dx X)_s)
 *   Q6_K, Q3_K  y = hsum8(sum_s f32(S_s) * (d * dx_s))
 *   Q2_K        y = hsum8(sum_s f32(S_s) * (d * dx_s)) - hsum8(sum_s f32(M_s) * (dmin * dx_s))
 * (8 lanes, lane j = block j of the group, products and sums in this order, hsum8 a fixed tree),
 * so each output row is computed the same way whatever the split of the rows over calls and
 * whatever rows are in flight with it (ROWS_IN_FLIGHT).
 *
 * The same kernels read the scale-grouped copies of Q4_0, IQ4_NL, IQ4_XS, Q8_0, Q3_K, Q4_K, Q5_K and Q6_K matrices
 * (quant_repack_avx2.c, luhd_quant_matvec_grouped): only the loads of a group's scales and quants
 * change (`grouped`, a compile-time constant, set only for those formats), so the results are the
 * same bits.
 *
 * Prepared x of one row (luhd_quant_avx2_row_stride bytes): per group of 8 blocks, GROUP_PREP
 * bytes: the 256 int8 values in the pair order above (pair k at 64k: elements 0..15 of block k,
 * of block k + 4, then elements 16..31 of both), 8 f32 dx, 8 f32 dx * X (X the sum of a block's
 * int8 values), 16 int16 sums of each half block (block j's halves at 2j, 2j + 1); then the
 * blocks after the last whole group (32-block rows whose length is not a multiple of 256):
 * 32 int8 values each in natural order, then their f32 dx. */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#include "quant_grouped_avx2.h"

#define GROUP_PREP (256 + 32 + 32 + 32)
#define PREP_DX 256
#define PREP_XS 288
#define PREP_X16 320

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

static inline float half_at(const uint8_t *p) { return _cvtsh_ss(load_u16(p)); }

/* How far ahead of its reads a kernel prefetches its weight stream, in bytes: 2 KiB was the best
 * of none, 0.5, 1 and 2 KiB on a 2-vCPU EPYC (Zen 3) under load, one row of x streaming 4096×4096
 * Q4_0 / Q4_K matrices from memory on two threads (BENCHMARKS.md notes:matvec9). */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 2048
#endif

/* Prefetches the lines of the n bytes PREFETCH_BYTES past p into L1. */
static inline __attribute__((always_inline)) void prefetch_span(const uint8_t *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)(p + PREFETCH_BYTES + o), _MM_HINT_T0);
}

/* Lane j of the result = the sum of the 4 lanes of pair register m[j & 3] in its 128-bit half
 * j >> 2, i.e. block j of the group. */
static inline __m256i block_sums(const __m256i m[4]) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(m[0], m[1]), _mm256_hadd_epi32(m[2], m[3]));
}

/* The same from 4 pair registers of int16 sums whose lanes are at most 7620 in magnitude (Q4_0,
 * Q4_K): two rounds of vphaddw (sums <= 15240, then <= 30480 < 32768: exact, no wrap) and one
 * vpmaddwd instead of four vpmaddwd and three vphaddd. */
static inline __m256i block_sums16(const __m256i v[4]) {
    const __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(v[0], v[1]), _mm256_hadd_epi16(v[2], v[3]));
    return _mm256_madd_epi16(h, _mm256_set1_epi16(1));
}

/* The sum of 8 lanes in a fixed order. */
static inline float hsum8(__m256 v) {
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* ---- Preparation of x ---- */

size_t luhd_quant_avx2_row_stride(long cols) {
    const size_t nb = (size_t)(cols / 32), ng = nb / 8, nt = nb - 8 * ng;
    return (ng * GROUP_PREP + nt * 36 + 63) / 64 * 64;
}

/* Quantizes one block of 32: writes round(x / dx) (ties to even, clamped to +-127) to q and the
 * sums of its halves to s[0], s[1]; returns dx = max|x| / 127. A block holding an infinity or a
 * NaN gets zeros, zero sums and dx = NaN, so every product with it is NaN, as in f32. */
static float quantize_block(const float *x, int8_t q[32], int s[2]) {
    __m256 v[4], amax = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)), fmax = _mm256_set1_ps(3.40282347e38f);
    int finite = 0xFF;
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        const __m256 a = _mm256_and_ps(v[k], absmask);
        finite &= _mm256_movemask_ps(_mm256_cmp_ps(a, fmax, _CMP_LE_OQ));
        amax = _mm256_max_ps(amax, a);
    }
    if (finite != 0xFF) {
        memset(q, 0, 32);
        s[0] = s[1] = 0;
        return NAN;
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float dx = _mm_cvtss_f32(m4) / 127.0f;
    const float id = dx != 0.0f ? 1.0f / dx : 0.0f;
    const __m256 vid = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i qi[4];
    for (int k = 0; k < 4; k++) {
        const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        qi[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
    }
    /* packs work per 128-bit half: bytes come out as 4-element runs 0,2,4,6 | 1,3,5,7 of the 8
     * runs; the dword permutation puts them back in order. */
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
    _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    for (int h = 0; h < 2; h++) {
        const __m256i t = _mm256_add_epi32(qi[2 * h], qi[2 * h + 1]);
        __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4E));
        u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xB1));
        s[h] = _mm_cvtsi128_si32(u);
    }
    return dx;
}

void luhd_quant_prepare_int8_avx2(const float *x, long ldx, long cols, int m, void *scratch) {
    const size_t stride = luhd_quant_avx2_row_stride(cols);
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    for (int i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)scratch + (size_t)i * stride;
        const float *xi = x + i * ldx;
        for (long g = 0; g < ng; g++) {
            uint8_t *gp = row + (size_t)g * GROUP_PREP;
            float *dx = (float *)(gp + PREP_DX), *xs = (float *)(gp + PREP_XS);
            int16_t *x16 = (int16_t *)(gp + PREP_X16);
            for (int b = 0; b < 8; b++) {
                int8_t q[32];
                int s[2];
                dx[b] = quantize_block(xi + 32 * (8 * g + b), q, s);
                xs[b] = dx[b] * (float)(s[0] + s[1]);
                x16[2 * b] = (int16_t)s[0];   /* |s| <= 16 * 127 */
                x16[2 * b + 1] = (int16_t)s[1];
                memcpy(gp + 64 * (b & 3) + 16 * (b >> 2), q, 16);
                memcpy(gp + 64 * (b & 3) + 32 + 16 * (b >> 2), q + 16, 16);
            }
        }
        int8_t *tq = (int8_t *)(row + (size_t)ng * GROUP_PREP);
        float *td = (float *)(tq + 32 * nt);
        for (long t = 0; t < nt; t++) {
            int s[2];
            td[t] = quantize_block(xi + 32 * (8 * ng + t), tq + 32 * t, s);
        }
    }
}

/* ---- Weight groups ----
 * A group function takes one group of one weight row (b: its first byte) against m rows of
 * prepared x (xg: row 0's prepared group, the rows pstride bytes apart) and adds its terms to
 * acc[i] (and macc[i]) as the header states. */

/* The 8 f16 values at offset 0 of 8 blocks `bb` bytes apart from g (a group's scales d, or from
 * g + 2 its Q4_1 / Q5_1 offsets m), widened to f32 in block order; gathered in general-purpose
 * registers, whose pipes the vector work leaves idle. */
static inline __m256 group_scales(const uint8_t *g, int bb) {
    const uint64_t lo = (uint64_t)load_u16(g) | (uint64_t)load_u16(g + bb) << 16 | (uint64_t)load_u16(g + 2 * bb) << 32 |
                        (uint64_t)load_u16(g + 3 * bb) << 48;
    const uint64_t hi = (uint64_t)load_u16(g + 4 * bb) | (uint64_t)load_u16(g + 5 * bb) << 16 |
                        (uint64_t)load_u16(g + 6 * bb) << 32 | (uint64_t)load_u16(g + 7 * bb) << 48;
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* The same 8 scales from a grouped copy (quant_repack_avx2.c), where they lie side by side at g. */
static inline __m256 grouped_scales(const uint8_t *g) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g)); }

/* acc + f32(S) * (d8 * dx) for one group of one row of x (prepared at gp). */
static inline __m256 group_accumulate(__m256 acc, __m256i s, __m256 d8, const uint8_t *gp) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d8, _mm256_loadu_ps((const float *)(gp + PREP_DX))), acc);
}

/* The fifth bits of two Q5_0 / Q5_1 blocks (qa, qc: bit j = element j) as 16 in byte j of the
 * low (qa) and high (qc) halves: lo for elements 0..15, hi for 16..31. */
static inline void fifth_bits(uint32_t qa, uint32_t qc, __m256i *lo, __m256i *hi) {
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_cvtsi32_si128((int)qa)), _mm_cvtsi32_si128((int)qc), 1);
    const __m256i sel = _mm256_set1_epi64x(0x8040201008040201LL), sixteen = _mm256_set1_epi8(16);
    const __m256i il = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m256i ih = _mm256_add_epi8(il, _mm256_set1_epi8(2));
    *lo = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, il), sel), sel), sixteen);
    *hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, ih), sel), sel), sixteen);
}

/* v[k] = lo[k] . x (elements 0..15 of pair k) + hi[k] . x (16..31) per vpmaddubsw lane pair,
 * for the row of x prepared at gp (unsigned weights of at most 31: lanes <= 2 * 2*31*127). */
static inline void unsigned_dots(const __m256i lo[4], const __m256i hi[4], const uint8_t *gp, __m256i v[4]) {
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_add_epi16(_mm256_maddubs_epi16(lo[k], _mm256_loadu_si256((const __m256i *)(gp + 64 * k))),
                                _mm256_maddubs_epi16(hi[k], _mm256_loadu_si256((const __m256i *)(gp + 64 * k + 32))));
}

/* block_sums16 for int16 lanes up to 15748 in magnitude (5-bit weights: 2 * 2*31*127): one round
 * of vphaddw (<= 31496 < 32768), then vpmaddwd with ones and one vphaddd. */
static inline __m256i block_sums16_wide(const __m256i v[4]) {
    const __m256i ones = _mm256_set1_epi16(1);
    return _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_hadd_epi16(v[0], v[1]), ones),
                             _mm256_madd_epi16(_mm256_hadd_epi16(v[2], v[3]), ones));
}

/* The int16 half-block sums of x (PREP_X16) times `offset`, summed per block: offset * X_j in
 * lane j. */
static inline __m256i x_offset(const uint8_t *gp, int offset) {
    return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(gp + PREP_X16)), _mm256_set1_epi16((short)offset));
}

/* Signed weights w (Q8_0, IQ4_NL) by the sign trick: S_j = sum |w| * (x with w's sign), each
 * vpmaddubsw result widened on its own (a pair reaches 2*128*127). */
static inline __m256i signed_sums(const __m256i wlo[4], const __m256i whi[4], const __m256i alo[4], const __m256i ahi[4],
                                  const uint8_t *gp) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p[4];
    for (int k = 0; k < 4; k++) {
        const __m256i xlo = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(gp + 64 * k)), wlo[k]);
        const __m256i xhi = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(gp + 64 * k + 32)), whi[k]);
        p[k] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(alo[k], xlo), ones),
                                _mm256_madd_epi16(_mm256_maddubs_epi16(ahi[k], xhi), ones));
    }
    return block_sums(p);
}

#define AI inline __attribute__((always_inline))

/* Bytes of one group of `format`: 8 blocks of 32, or one super-block of 256. */
static AI size_t group_bytes(const int format) {
    switch (format) {
    case LUHD_QF_Q4_0: case LUHD_QF_IQ4_NL: return 8 * 18;
    case LUHD_QF_Q4_1: return 8 * 20;
    case LUHD_QF_Q5_0: return 8 * 22;
    case LUHD_QF_Q5_1: return 8 * 24;
    case LUHD_QF_Q8_0: return 8 * 34;
    case LUHD_QF_IQ4_XS: return 136;
    case LUHD_QF_Q4_K: return 144;
    case LUHD_QF_Q5_K: return 176;
    case LUHD_QF_Q2_K: return 84;
    case LUHD_QF_Q3_K: return 110;
    default: return 210;   /* Q6_K */
    }
}

/* The pairs of a Q5_0 / Q5_1 group of 8 blocks of bb bytes: each block's u32 fifth bits at
 * qh_at, its 16 nibble bytes right after. */
static inline void five_bit_pairs(const uint8_t *b, int bb, int qh_at, __m256i lo[4], __m256i hi[4]) {
    for (int k = 0; k < 4; k++) {
        const uint8_t *a = b + bb * k, *c = b + bb * (k + 4);
        uint32_t qa, qc;
        memcpy(&qa, a + qh_at, 4);
        memcpy(&qc, c + qh_at, 4);
        __m256i fl, fh;
        fifth_bits(qa, qc, &fl, &fh);
        nibble_pair(a + qh_at + 4, c + qh_at + 4, &lo[k], &hi[k]);
        lo[k] = _mm256_or_si256(lo[k], fl);
        hi[k] = _mm256_or_si256(hi[k], fh);
    }
}

/* The unsigned 4- and 5-bit formats, 8 blocks of 32 (f16 d first in each block; element j in
 * the low nibble of nibble byte j, j + 16 in the high nibble):
 *   Q4_0  18 bytes (d, 16 nibble bytes)                    S = sum q x - 8 X
 *   Q4_1  20 bytes (d, f16 m, 16 nibble bytes)             S = sum q x, and m dx X into macc
 *   Q5_0  22 bytes (d, u32 fifth bits, 16 nibble bytes)    S = sum q x - 16 X
 *   Q5_1  24 bytes (d, m, u32 fifth bits, 16 nibble bytes) S = sum q x, and m dx X into macc */
static AI void group_unsigned(const int format, const int grouped, const uint8_t *b, const uint8_t *xg, size_t ps, int m,
                              __m256 *acc, __m256 *macc) {
    const int bb = (int)group_bytes(format) / 8;
    const int five = format == LUHD_QF_Q5_0 || format == LUHD_QF_Q5_1, offsets = format == LUHD_QF_Q4_1 || format == LUHD_QF_Q5_1;
    __m256i lo[4], hi[4], v[4];
    if (grouped) {   /* Q4_0 grouped (quant_repack_avx2.c): pair k's 32 nibble bytes at 16 + 32k */
        for (int k = 0; k < 4; k++) split_nibbles(_mm256_loadu_si256((const __m256i *)(b + 16 + 32 * k)), &lo[k], &hi[k]);
    } else if (five) {
        five_bit_pairs(b, bb, offsets ? 4 : 2, lo, hi);
    } else {
        for (int k = 0; k < 4; k++) nibble_pair(b + bb * k + (offsets ? 4 : 2), b + bb * (k + 4) + (offsets ? 4 : 2), &lo[k], &hi[k]);
    }
    const __m256 d8 = grouped ? grouped_scales(b) : group_scales(b, bb), m8 = offsets ? group_scales(b + 2, bb) : _mm256_setzero_ps();
    for (int i = 0; i < m; i++) {
        const uint8_t *gp = xg + (size_t)i * ps;
        unsigned_dots(lo, hi, gp, v);
        __m256i sums = five ? block_sums16_wide(v) : block_sums16(v);
        if (!offsets) sums = _mm256_add_epi32(sums, x_offset(gp, five ? -16 : -8));
        acc[i] = group_accumulate(acc[i], sums, d8, gp);
        if (offsets) macc[i] = _mm256_fmadd_ps(m8, _mm256_loadu_ps((const float *)(gp + PREP_XS)), macc[i]);
    }
}

/* The 8 f32 scales d * (ls_j - 32) of an IQ4_XS super-block h (f16 d, u16 high scale bits at 2:
 * bits 2j..2j+1 for sub-block j, low scale bits at 4: nibble j of the u32, luhd_iq4xs_scale),
 * each an exact product. */
static inline __m256 iq4_xs_scales(const uint8_t *h) {
    uint32_t low;
    memcpy(&low, h + 4, 4);
    const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)low), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                        _mm256_set1_epi32(0x0F));
    const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(load_u16(h + 2)), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                        _mm256_set1_epi32(3));
    const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(ls), _mm256_set1_ps(half_at(h)));
}

/* iq4_xs_scales from a grouped IQ4_XS super-block h (quant_repack_avx2.c): bits 6j..6j+5 of the
 * 48-bit little-endian field at 2 hold ls_j - 32 in 6-bit two's complement. One 64-bit broadcast
 * load of the header; vpshufb puts the byte(s) holding field j in the top bytes of lane j (the
 * same indices in both 128-bit halves: bytes 0..7 repeat), a variable left shift brings the
 * field's top bit to bit 31 and an arithmetic right shift by 26 sign-extends it; d is lane 0 of
 * the same register. The same integers and the same product as iq4_xs_scales. */
static inline __m256 iq4_xs_grouped_scales(const uint8_t *h) {
    const __m256i v = _mm256_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)h));
    /* lane j: field byte(s) in lane bytes 2..3 (0x80: zero below them), then the shift */
    const __m256i pick = _mm256_setr_epi8(-128, -128, -128, 2, -128, -128, 2, 3, -128, -128, 3, 4, -128, -128, -128, 4,
                                          -128, -128, -128, 5, -128, -128, 5, 6, -128, -128, 6, 7, -128, -128, -128, 7);
    const __m256i top = _mm256_sllv_epi32(_mm256_shuffle_epi8(v, pick), _mm256_setr_epi32(2, 4, 6, 0, 2, 4, 6, 0));
    const __m256 d = _mm256_broadcastss_ps(_mm_cvtph_ps(_mm256_castsi256_si128(v)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srai_epi32(top, 26)), d);
}

/* The signed formats by the sign trick, 8 blocks of 32 (f16 d first in each block) or one
 * super-block:
 *   Q8_0    34 bytes (d, 32 int8)
 *   IQ4_NL  18 bytes (d, 16 bytes of 4-bit indices into luhd_iq4_values, laid out as Q4_0's
 *           nibbles): the values (-127..113) looked up by vpshufb
 *   IQ4_XS  136 bytes (d, the 8 sub-blocks' 6-bit scales in 6 bytes, then 8 x 16 index bytes,
 *           each sub-block laid out as an IQ4_NL block's); grouped (quant_repack_avx2.c): the
 *           scales as iq4_xs_grouped_scales reads them, pair k's 32 index bytes at 8 + 32k */
static AI void group_signed(const int format, const int grouped, const uint8_t *b, const uint8_t *xg, size_t ps, int m,
                            __m256 *acc) {
    const int bb = (int)group_bytes(format) / 8;
    __m256i wlo[4], whi[4], alo[4], ahi[4];
    for (int k = 0; k < 4; k++) {
        if (format == LUHD_QF_Q8_0 && grouped) {   /* grouped (quant_repack_avx2.c): pair k's 64 bytes at 16 + 64k */
            wlo[k] = _mm256_loadu_si256((const __m256i *)(b + 16 + 64 * k));
            whi[k] = _mm256_loadu_si256((const __m256i *)(b + 48 + 64 * k));
        } else if (format == LUHD_QF_Q8_0) {
            wlo[k] = load_pair(b + bb * k + 2, b + bb * (k + 4) + 2);
            whi[k] = load_pair(b + bb * k + 18, b + bb * (k + 4) + 18);
        } else {
            const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)luhd_iq4_values));
            if (grouped) {   /* Q4_0's grouped layout: pair k's 32 index bytes at 16 + 32k (IQ4_XS: 8 + 32k) */
                split_nibbles(_mm256_loadu_si256((const __m256i *)(b + (format == LUHD_QF_IQ4_XS ? 8 : 16) + 32 * k)), &wlo[k], &whi[k]);
            } else if (format == LUHD_QF_IQ4_XS) {
                nibble_pair(b + 8 + 16 * k, b + 8 + 16 * (k + 4), &wlo[k], &whi[k]);
            } else {
                nibble_pair(b + bb * k + 2, b + bb * (k + 4) + 2, &wlo[k], &whi[k]);
            }
            wlo[k] = _mm256_shuffle_epi8(table, wlo[k]);
            whi[k] = _mm256_shuffle_epi8(table, whi[k]);
        }
        alo[k] = _mm256_abs_epi8(wlo[k]);
        ahi[k] = _mm256_abs_epi8(whi[k]);
    }
    const __m256 d8 = format == LUHD_QF_IQ4_XS ? (grouped ? iq4_xs_grouped_scales(b) : iq4_xs_scales(b))
                      : grouped                 ? grouped_scales(b)
                                                : group_scales(b, bb);
    for (int i = 0; i < m; i++) {
        const uint8_t *gp = xg + (size_t)i * ps;
        acc[i] = group_accumulate(acc[i], signed_sums(wlo, whi, alo, ahi, gp), d8, gp);
    }
}

/* The f32 scales d * sc_j and mins dmin * m_j (sub-blocks j = 0..7) of a Q4_K / Q5_K super-block
 * header h (f16 d, f16 dmin, the 12 bytes of luhd_q4k_scale_min), each an exact product. The
 * 6-bit values are unpacked in one vector register, four bytes per lane: with a0, a1, a2 the
 * little-endian words of the 12 bytes, scales 0..3 = a0 & 0x3F.., mins 0..3 = a1 & 0x3F..,
 * scales 4..7 = (a2 & 0x0F..) | ((a0 >> 2) & 0x30..), mins 4..7 = ((a2 >> 4) & 0x0F..) |
 * ((a1 >> 2) & 0x30..). */
static inline void q4_k_scales(const uint8_t *h, __m256 *scf, __m256 *mnf) {
    uint32_t dd;
    memcpy(&dd, h, 4);
    const __m128i v = _mm_loadu_si128((const __m128i *)(h + 4));   /* a0, a1, a2, (next bytes) */
    const __m128i low = _mm_and_si128(v, _mm_set1_epi8(0x3F));     /* lanes 0, 1: scales, mins 0..3 */
    const __m128i top = _mm_and_si128(_mm_srli_epi32(v, 2), _mm_set1_epi8(0x30));
    const __m128i a2 = _mm_srlv_epi32(_mm_shuffle_epi32(v, 0xAA), _mm_setr_epi32(0, 4, 0, 0));
    const __m128i high = _mm_or_si128(_mm_and_si128(a2, _mm_set1_epi8(0x0F)), top); /* lanes 0, 1: scales, mins 4..7 */
    const __m128i sm = _mm_unpacklo_epi32(low, high);   /* scales 0..7, mins 0..7 */
    const __m256 dm = _mm256_cvtph_ps(_mm_cvtsi32_si128((int)dd));   /* d, dmin */
    *scf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)), _mm256_permutevar8x32_ps(dm, _mm256_setzero_si256()));
    *mnf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))),
                         _mm256_permutevar8x32_ps(dm, _mm256_set1_epi32(1)));
}

/* acc += f32(S) * (d sc * dx), macc += dmin m * dx X: the K formats with mins. */
static AI void k_accumulate(__m256i s, __m256 scf, __m256 mnf, const uint8_t *gp, __m256 *acc, __m256 *macc) {
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(scf, _mm256_loadu_ps((const float *)(gp + PREP_DX))), *acc);
    *macc = _mm256_fmadd_ps(mnf, _mm256_loadu_ps((const float *)(gp + PREP_XS)), *macc);
}

/* q4_k_scales from a grouped Q4_K super-block h (quant_repack_avx2.c): lane j of the widened
 * bytes 4..11 holds sc_j in bits 0..5 and m_j >> 4 in bits 6..7, the u32 at 12 m_j & 15 in bits
 * 4j..4j+3. The same integers, so the same products. */
static inline void q4_k_grouped_scales(const uint8_t *h, __m256 *scf, __m256 *mnf) {
    uint32_t dd, mins;
    memcpy(&dd, h, 4);
    memcpy(&mins, h + 12, 4);
    const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(h + 4)));
    const __m256i low = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)mins), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                         _mm256_set1_epi32(15));
    const __m256i mn = _mm256_or_si256(low, _mm256_and_si256(_mm256_srli_epi32(w, 2), _mm256_set1_epi32(0x30)));
    const __m256 dm = _mm256_cvtph_ps(_mm_cvtsi32_si128((int)dd));   /* d, dmin */
    *scf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(w, _mm256_set1_epi32(63))),
                         _mm256_permutevar8x32_ps(dm, _mm256_setzero_si256()));
    *mnf = _mm256_mul_ps(_mm256_cvtepi32_ps(mn), _mm256_permutevar8x32_ps(dm, _mm256_set1_epi32(1)));
}

/* Q4_K: 144-byte super-blocks (f16 d, f16 dmin, 12 bytes of scales and mins, 128 nibble bytes);
 * grouped (quant_repack_avx2.c): the scales as q4_k_grouped_scales reads them, then the 256-bit
 * run s = 2c + h at 16 + 32s giving pairs 2c and 2c + 1, elements 16h..16h+15. */
static AI void group_q4_k(const int grouped, const uint8_t *b, const uint8_t *xg, size_t ps, int m, __m256 *acc,
                          __m256 *macc) {
    __m256i lo[4], hi[4], v[4];
    __m256 scf, mnf;
    if (grouped) {
        for (int c = 0; c < 2; c++) {
            split_nibbles(_mm256_loadu_si256((const __m256i *)(b + 16 + 64 * c)), &lo[2 * c], &lo[2 * c + 1]);
            split_nibbles(_mm256_loadu_si256((const __m256i *)(b + 48 + 64 * c)), &hi[2 * c], &hi[2 * c + 1]);
        }
        q4_k_grouped_scales(b, &scf, &mnf);
    } else {
        k_nibbles(b + 16, lo, hi);
        q4_k_scales(b, &scf, &mnf);
    }
    for (int i = 0; i < m; i++) {
        const uint8_t *gp = xg + (size_t)i * ps;
        unsigned_dots(lo, hi, gp, v);
        k_accumulate(block_sums16(v), scf, mnf, gp, &acc[i], &macc[i]);
    }
}

/* Q5_K, stored (q5_k_pairs, q4_k_scales) or grouped (q5_k_grouped_pairs, q4_k_grouped_scales):
 * the same integers, so the same bits. */
static AI void group_q5_k(const int grouped, const uint8_t *b, const uint8_t *xg, size_t ps, int m, __m256 *acc, __m256 *macc) {
    __m256i lo[4], hi[4], v[4];
    __m256 scf, mnf;
    if (grouped) {
        q5_k_grouped_pairs(b, lo, hi);
        q4_k_grouped_scales(b, &scf, &mnf);
    } else {
        q5_k_pairs(b, lo, hi);
        q4_k_scales(b, &scf, &mnf);
    }
    for (int i = 0; i < m; i++) {
        const uint8_t *gp = xg + (size_t)i * ps;
        unsigned_dots(lo, hi, gp, v);
        k_accumulate(block_sums16_wide(v), scf, mnf, gp, &acc[i], &macc[i]);
    }
}

/* Q6_K: 210-byte super-blocks: 128 bytes of low nibbles (ql), 64 of 2-bit high parts (qh), 16
 * int8 scales (one per 16 weights), f16 d. Half h (weights 128h..128h+127) reads ql[64h..],
 * qh[32h..]: its sub-block t (0..3) of 32 takes byte l of ql[64h + 32 (t & 1)..] (low nibble for
 * t < 2, else high) and bits 2t of qh[32h + l]. Pair k = sub-blocks k (half 0) and k + 4 (half
 * 1), so each register holds the same bytes of both halves: lo[k] and hi[k] (elements 0..15 and
 * 16..31 of the pair's sub-blocks) are the 6-bit weights q, 0..63. */
static inline void q6_k_pairs(const uint8_t *b, __m256i lo[4], __m256i hi[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const uint8_t *ql = b, *qh = b + 128;
    const __m256i la = load_pair(ql, ql + 64), lb = load_pair(ql + 16, ql + 80);
    const __m256i lc = load_pair(ql + 32, ql + 96), ld = load_pair(ql + 48, ql + 112);
    const __m256i ha = load_pair(qh, qh + 32), hb = load_pair(qh + 16, qh + 48);
    for (int k = 0; k < 4; k++) {
        /* pair k: its low nibbles from ql bytes 0..31 (k even) or 32..63 (k odd), the high
         * nibble for k >= 2; its 2 high bits from bits 2k of qh */
        const __m256i l0 = k & 1 ? lc : la, l1 = k & 1 ? ld : lb;
        const __m256i n0 = k < 2 ? _mm256_and_si256(l0, m4) : _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4);
        const __m256i n1 = k < 2 ? _mm256_and_si256(l1, m4) : _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4);
        const __m256i t0 = k == 0 ? _mm256_slli_epi16(ha, 4) : k == 1 ? _mm256_slli_epi16(ha, 2) : k == 2 ? ha : _mm256_srli_epi16(ha, 2);
        const __m256i t1 = k == 0 ? _mm256_slli_epi16(hb, 4) : k == 1 ? _mm256_slli_epi16(hb, 2) : k == 2 ? hb : _mm256_srli_epi16(hb, 2);
        lo[k] = _mm256_or_si256(n0, _mm256_and_si256(t0, m30));
        hi[k] = _mm256_or_si256(n1, _mm256_and_si256(t1, m30));
    }
}

/* The 16 signed scales sc - 32 of a Q3_K super-block (the 12 bytes at s, luhd_q3k_scale) as
 * bytes 0..15, in vector registers: the low 4 bits of scales 0..7 / 8..15 are the low / high
 * nibbles of bytes 0..7 (one 64-bit load, its copy shifted right by 4 in the upper half, one
 * mask); the high 2 bits of scale 4k + i are bits 2k..2k+1 of byte 8 + i, so the u32 at 8
 * broadcast and shifted right by 2k in dword k, masked to 2 bits, gives them in scale order.
 * 8 vector instructions and 2 loads (gathering the same bits in general-purpose registers and
 * inserting them took 13 vector instructions after the compiler's own vectorizing). */
static inline __m128i q3_k_scales(const uint8_t *s) {
    const __m128i nib = _mm_loadl_epi64((const __m128i *)s);
    const __m128i low = _mm_and_si128(_mm_unpacklo_epi64(nib, _mm_srli_epi16(nib, 4)), _mm_set1_epi8(0x0F));
    uint32_t h;
    memcpy(&h, s + 8, 4);
    const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)h), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
}

/* Q2_K: 84-byte super-blocks: 16 bytes of scale (low nibble) and min (high nibble) per 16
 * weights, 64 bytes of 2-bit q (qs, at 16), f16 d, f16 dmin. Element l of sub-block t = 4h + s
 * takes bits 2s of qs[32h + l] (Q3_K's low parts); pair k as Q3_K's. */
static inline void q2_k_pairs(const uint8_t *qs, __m256i lo[4], __m256i hi[4]) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i qa = load_pair(qs, qs + 32), qb = load_pair(qs + 16, qs + 48);
    for (int k = 0; k < 4; k++) {
        const __m128i shift = _mm_cvtsi32_si128(2 * k);
        lo[k] = _mm256_and_si256(_mm256_srl_epi16(qa, shift), m3);
        hi[k] = _mm256_and_si256(_mm256_srl_epi16(qb, shift), m3);
    }
}

/* The formats with a scale per 16 weights and the sub-block order of Q6_K's pairs: Q6_K (stored
 * or grouped: the 192 quant bytes as q6_k_grouped_pairs reads them; the 16 int8 scales at 192 and
 * d at 208 in both), Q3_K (stored or grouped: the 96 weight bytes as q3_k_grouped_pairs reads
 * them; the 12 scale bytes at 96 and d at 108 in both) and Q2_K (stored). S_j = sum_l sc u x - o sum sc X16 for sub-block j
 * (o = 32 for Q6_K, 4 for Q3_K, 0 for Q2_K), in lane j; Q2_K also M_j = sum m X16 into macc. */
static AI void group_k16(const int format, const int grouped, const uint8_t *b, const uint8_t *xg, size_t ps, int m,
                         __m256 *acc, __m256 *macc) {
    __m256i lo[4], hi[4], sc16, mn16 = _mm256_setzero_si256();
    __m256 d, dmin = _mm256_setzero_ps();
    if (format == LUHD_QF_Q3_K) {
        if (grouped) q3_k_grouped_pairs(b, lo, hi);
        else q3_k_pairs(b, lo, hi);
        sc16 = _mm256_cvtepi8_epi16(q3_k_scales(b + 96));
        d = _mm256_set1_ps(half_at(b + 108));
    } else if (format == LUHD_QF_Q2_K) {
        q2_k_pairs(b + 16, lo, hi);
        const __m128i s = _mm_loadu_si128((const __m128i *)b), m4 = _mm_set1_epi8(0x0F);
        sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(s, m4));
        mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
        d = _mm256_set1_ps(half_at(b + 80));
        dmin = _mm256_set1_ps(half_at(b + 82));
    } else {
        if (grouped) q6_k_grouped_pairs(b, lo, hi);
        else q6_k_pairs(b, lo, hi);
        sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
        d = _mm256_set1_ps(half_at(b + 208));
    }
    /* sc16: scales 0..7 widened in the low half, 8..15 in the high half */
    __m256i p[4][4];
    for (int k = 0; k < 4; k++) {
        /* the vpshufb masks pick word 2k (elements 0..15 of the pair's sub-blocks) or 2k + 1
         * (16..31) of each 128-bit half of the widened scales, i.e. scale 2k / 2k + 8 (or
         * 2k + 1 / 2k + 9) */
        const __m256i slo = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((4 * k) | (4 * k + 1) << 8)));
        const __m256i shi = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((4 * k + 2) | (4 * k + 3) << 8)));
        for (int i = 0; i < m; i++) {
            const uint8_t *gp = xg + (size_t)i * ps;
            const __m256i vlo = _mm256_maddubs_epi16(lo[k], _mm256_loadu_si256((const __m256i *)(gp + 64 * k)));
            const __m256i vhi = _mm256_maddubs_epi16(hi[k], _mm256_loadu_si256((const __m256i *)(gp + 64 * k + 32)));
            p[i][k] = _mm256_add_epi32(_mm256_madd_epi16(vlo, slo), _mm256_madd_epi16(vhi, shi));
        }
    }
    for (int i = 0; i < m; i++) {
        const uint8_t *gp = xg + (size_t)i * ps;
        const __m256i x16 = _mm256_loadu_si256((const __m256i *)(gp + PREP_X16));
        const __m256 dx = _mm256_loadu_ps((const float *)(gp + PREP_DX));
        __m256i sj = block_sums(p[i]);
        if (format == LUHD_QF_Q2_K) {
            /* M = sum m * X16, sub-block j in lane j */
            macc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(mn16, x16)), _mm256_mul_ps(dmin, dx), macc[i]);
        } else {
            /* S = sum sc * u * x - o * sum sc * X16 */
            const __m256i off = _mm256_madd_epi16(sc16, x16);
            sj = _mm256_sub_epi32(sj, _mm256_slli_epi32(off, format == LUHD_QF_Q3_K ? 2 : 5));
        }
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sj), _mm256_mul_ps(d, dx), acc[i]);
    }
}

/* One group of `format` (a compile-time constant where this is inlined). */
static AI void group_terms(const int format, const int grouped, const uint8_t *b, const uint8_t *xg, size_t ps, int m,
                           __m256 *acc, __m256 *macc) {
    switch (format) {
    case LUHD_QF_Q4_0: case LUHD_QF_Q4_1: case LUHD_QF_Q5_0: case LUHD_QF_Q5_1:
        group_unsigned(format, grouped, b, xg, ps, m, acc, macc);
        break;
    case LUHD_QF_Q8_0: case LUHD_QF_IQ4_NL: case LUHD_QF_IQ4_XS: group_signed(format, grouped, b, xg, ps, m, acc); break;
    case LUHD_QF_Q4_K: group_q4_k(grouped, b, xg, ps, m, acc, macc); break;
    case LUHD_QF_Q5_K: group_q5_k(grouped, b, xg, ps, m, acc, macc); break;
    default: group_k16(format, grouped, b, xg, ps, m, acc, macc); break;   /* Q6_K, Q3_K, Q2_K */
    }
}

/* ---- Row results ---- */

/* The element j (0..31) of a block of a 32-block format at bt as the integer its kernel
 * multiplies by x (the weight is d times it, plus m for Q4_1 / Q5_1). */
static inline int block_value(int format, const uint8_t *bt, int j) {
    uint32_t qh;
    switch (format) {
    case LUHD_QF_Q8_0: return (int8_t)bt[2 + j];
    case LUHD_QF_Q4_0: return (j < 16 ? bt[2 + j] & 0x0F : bt[2 + j - 16] >> 4) - 8;
    case LUHD_QF_Q4_1: return j < 16 ? bt[4 + j] & 0x0F : bt[4 + j - 16] >> 4;
    case LUHD_QF_Q5_0:
        memcpy(&qh, bt + 2, 4);
        return ((j < 16 ? bt[6 + j] & 0x0F : bt[6 + j - 16] >> 4) | (int)((qh >> j) & 1) << 4) - 16;
    case LUHD_QF_Q5_1:
        memcpy(&qh, bt + 4, 4);
        return (j < 16 ? bt[8 + j] & 0x0F : bt[8 + j - 16] >> 4) | (int)((qh >> j) & 1) << 4;
    default: return luhd_iq4_values[j < 16 ? bt[2 + j] & 0x0F : bt[2 + j - 16] >> 4];   /* IQ4_NL */
    }
}

/* A row's result for one row of x (prepared at xrow) from its accumulators: K formats
 * hsum8(acc) - hsum8(macc) (Q3_K, Q6_K, IQ4_XS: hsum8(acc)); 32-block formats hsum8(acc) (Q4_1, Q5_1: plus
 * hsum8(macc)), then each of the nt blocks after the last whole group (the first at tail) in
 * block order: + f32(S) * (d * dx) with S its exact integer dot product with x's int8 values
 * (Q4_1, Q5_1: also + m * (dx * X), X the sum of those values). */
static AI float row_result(const int format, __m256 acc, __m256 macc, const uint8_t *tail, const uint8_t *xrow, long ng,
                           long nt) {
    switch (format) {
    case LUHD_QF_Q2_K: case LUHD_QF_Q4_K: case LUHD_QF_Q5_K: return hsum8(acc) - hsum8(macc);
    case LUHD_QF_Q3_K: case LUHD_QF_Q6_K: case LUHD_QF_IQ4_XS: return hsum8(acc);
    default: break;
    }
    const int offsets = format == LUHD_QF_Q4_1 || format == LUHD_QF_Q5_1;
    const size_t bb = group_bytes(format) / 8;
    const int8_t *tq = (const int8_t *)(xrow + (size_t)ng * GROUP_PREP);
    const float *td = (const float *)(tq + 32 * nt);
    float t = offsets ? hsum8(acc) + hsum8(macc) : hsum8(acc);
    for (long k = 0; k < nt; k++) {
        const uint8_t *bt = tail + bb * (size_t)k;
        const int8_t *xq = tq + 32 * k;
        int32_t sum = 0, xsum = 0;
        for (int j = 0; j < 32; j++) {
            sum += block_value(format, bt, j) * xq[j];
            xsum += xq[j];
        }
        t += (float)sum * (half_at(bt) * td[k]);
        if (offsets) t += half_at(bt + 2) * (td[k] * (float)xsum);
    }
    return t;
}

/* ---- Row loops ---- */

/* Weight rows one call keeps in flight with one row of x (decode): its rows are taken as
 * ROWS_IN_FLIGHT runs of consecutive rows far apart, one row of each run at a time, group by
 * group, so ROWS_IN_FLIGHT weight streams are read side by side (one sequential stream per core
 * left memory bandwidth unused: BENCHMARKS.md notes:decode10). Each row is computed as alone. */
#ifndef ROWS_IN_FLIGHT
#define ROWS_IN_FLIGHT 2
#endif

/* Rows r0 + s * run + i (s < R streams, i < run) of `format`, each against m rows of x. */
static AI void rows_in_flight(const int format, const int grouped, const int R, const uint8_t *w, size_t rb, long r0,
                              long run, long cols, const uint8_t *prep, size_t ps, const int m, float *y, long ldy) {
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    const size_t gb = group_bytes(format);
    for (long i = 0; i < run; i++) {
        const uint8_t *b[ROWS_IN_FLIGHT];
        __m256 acc[ROWS_IN_FLIGHT][4], macc[ROWS_IN_FLIGHT][4];
        for (int s = 0; s < R; s++) {
            b[s] = w + (size_t)(r0 + s * run + i) * rb;
            for (int j = 0; j < 4; j++) acc[s][j] = macc[s][j] = _mm256_setzero_ps();
        }
        for (long g = 0; g < ng; g++) {
            const uint8_t *xg = prep + (size_t)g * GROUP_PREP;
            for (int s = 0; s < R; s++) {
                prefetch_span(b[s], gb);
                group_terms(format, grouped, b[s], xg, ps, m, acc[s], macc[s]);
                b[s] += gb;
            }
        }
        for (int s = 0; s < R; s++)
            for (int j = 0; j < m; j++)
                y[j * ldy + r0 + s * run + i] = row_result(format, acc[s][j], macc[s][j], b[s], prep + (size_t)j * ps, ng, nt);
    }
}

/* Rows [r0, r1): with one row of x, ROWS_IN_FLIGHT runs of (r1 - r0) / ROWS_IN_FLIGHT rows, then
 * the rows left one at a time. */
static AI void rows(const int format, const int grouped, const uint8_t *w, size_t rb, long r0, long r1, long cols,
                    const uint8_t *prep, size_t ps, const int m, float *y, long ldy) {
    const long run = m == 1 ? (r1 - r0) / ROWS_IN_FLIGHT : 0;
    if (run > 0) rows_in_flight(format, grouped, ROWS_IN_FLIGHT, w, rb, r0, run, cols, prep, ps, m, y, ldy);
    const long done = ROWS_IN_FLIGHT * run;
    rows_in_flight(format, grouped, 1, w, rb, r0 + done, r1 - r0 - done, cols, prep, ps, m, y, ldy);
}

int luhd_quant_int8_avx2_supports(int format) {
    switch (format) {
    case LUHD_QF_Q4_0: case LUHD_QF_Q4_1: case LUHD_QF_Q5_0: case LUHD_QF_Q5_1: case LUHD_QF_Q8_0: case LUHD_QF_IQ4_NL:
    case LUHD_QF_IQ4_XS: case LUHD_QF_Q2_K: case LUHD_QF_Q3_K: case LUHD_QF_Q4_K: case LUHD_QF_Q5_K: case LUHD_QF_Q6_K:
        return 1;
    default: return 0;
    }
}

/* rows() of format F and layout G (0 stored, 1 scale-grouped) with the caller's m (1-4 rows of x)
 * as a compile-time constant; the caller's wb, rb, r0, r1, cols, prep, stride, m, y and ldy. */
#define ROWS_FOR_M(F, G)                                                      \
    switch (m) {                                                              \
    case 1: rows(F, G, wb, rb, r0, r1, cols, prep, stride, 1, y, ldy); break; \
    case 2: rows(F, G, wb, rb, r0, r1, cols, prep, stride, 2, y, ldy); break; \
    case 3: rows(F, G, wb, rb, r0, r1, cols, prep, stride, 3, y, ldy); break; \
    default: rows(F, G, wb, rb, r0, r1, cols, prep, stride, 4, y, ldy); break; \
    }

void luhd_quant_matvec_int8_avx2(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                 const void *prepared, int m, float *y, long ldy) {
    const uint8_t *wb = (const uint8_t *)w, *prep = (const uint8_t *)prepared;
    const size_t stride = luhd_quant_avx2_row_stride(cols);
    switch (format) {
    case LUHD_QF_Q4_0: ROWS_FOR_M(LUHD_QF_Q4_0, 0) break;
    case LUHD_QF_Q4_1: ROWS_FOR_M(LUHD_QF_Q4_1, 0) break;
    case LUHD_QF_Q5_0: ROWS_FOR_M(LUHD_QF_Q5_0, 0) break;
    case LUHD_QF_Q5_1: ROWS_FOR_M(LUHD_QF_Q5_1, 0) break;
    case LUHD_QF_Q8_0: ROWS_FOR_M(LUHD_QF_Q8_0, 0) break;
    case LUHD_QF_IQ4_NL: ROWS_FOR_M(LUHD_QF_IQ4_NL, 0) break;
    case LUHD_QF_IQ4_XS: ROWS_FOR_M(LUHD_QF_IQ4_XS, 0) break;
    case LUHD_QF_Q2_K: ROWS_FOR_M(LUHD_QF_Q2_K, 0) break;
    case LUHD_QF_Q3_K: ROWS_FOR_M(LUHD_QF_Q3_K, 0) break;
    case LUHD_QF_Q4_K: ROWS_FOR_M(LUHD_QF_Q4_K, 0) break;
    case LUHD_QF_Q5_K: ROWS_FOR_M(LUHD_QF_Q5_K, 0) break;
    case LUHD_QF_Q6_K: ROWS_FOR_M(LUHD_QF_Q6_K, 0) break;
    default: break;
    }
}

void luhd_quant_matvec_grouped(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                         const void *prepared, int m, float *y, long ldy) {
    const uint8_t *wb = (const uint8_t *)w, *prep = (const uint8_t *)prepared;
    const size_t stride = luhd_quant_avx2_row_stride(cols);
    if (!luhd_quant_grouped_supports(format, cols) || r0 < 0 || r1 <= r0 || m < 1 || m > 4) return;
    switch (format) {
    case LUHD_QF_Q4_0: ROWS_FOR_M(LUHD_QF_Q4_0, 1) break;
    case LUHD_QF_Q8_0: ROWS_FOR_M(LUHD_QF_Q8_0, 1) break;
    case LUHD_QF_IQ4_NL: ROWS_FOR_M(LUHD_QF_IQ4_NL, 1) break;
    case LUHD_QF_IQ4_XS: ROWS_FOR_M(LUHD_QF_IQ4_XS, 1) break;
    case LUHD_QF_Q4_K: ROWS_FOR_M(LUHD_QF_Q4_K, 1) break;
    case LUHD_QF_Q5_K: ROWS_FOR_M(LUHD_QF_Q5_K, 1) break;
    case LUHD_QF_Q6_K: ROWS_FOR_M(LUHD_QF_Q6_K, 1) break;
    case LUHD_QF_Q3_K: ROWS_FOR_M(LUHD_QF_Q3_K, 1) break;
    default: break;
    }
}
#undef ROWS_FOR_M
#pragma clang attribute pop
