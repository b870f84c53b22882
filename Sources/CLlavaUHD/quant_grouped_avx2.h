/* The 8 pair registers (lo[k] / hi[k]: the weights of elements 0..15 / 16..31 of sub-blocks k
 * and k + 4) of a super-block in the scale-grouped Q3_K, Q5_K and Q6_K layouts (quant_repack_avx2.c
 * describes them), shared by the int8 AVX2 decode kernel (quant_matvec_int8_avx2.c) and the
 * restore of the stored layout for prefill (quant_repack_avx2.c), so both read the layout the
 * same way. Include after a `#pragma clang attribute push` that enables AVX2. */
#ifndef LUHD_QUANT_GROUPED_AVX2_H
#define LUHD_QUANT_GROUPED_AVX2_H
#include <immintrin.h>
#include <stdint.h>

/* The pair registers of a grouped Q5_K super-block (q5_k_pairs of quant_matvec_int8_avx2.c makes
 * the same from the stored layout): the 256-bit run r (0..4) at
 * 16 + 32r holds register r of lo[0], hi[0], lo[1], hi[1], lo[2] in the low 5 bits of each byte
 * and in bits 5..7 bits 3r..3r+2 of W = hi[2] | lo[3] << 5 | hi[3] << 10 (each byte's bits
 * masked before its 16-bit shift): the same bytes q as the stored layout, with 23 vector
 * instructions instead of 46 (6 of them inserts). */
static inline void q5_k_grouped_pairs(const uint8_t *b, __m256i lo[4], __m256i hi[4]) {
    const __m256i m1f = _mm256_set1_epi8(0x1F);
    __m256i r[5];
    for (int j = 0; j < 5; j++) r[j] = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * j));
    lo[0] = _mm256_and_si256(r[0], m1f);
    hi[0] = _mm256_and_si256(r[1], m1f);
    lo[1] = _mm256_and_si256(r[2], m1f);
    hi[1] = _mm256_and_si256(r[3], m1f);
    lo[2] = _mm256_and_si256(r[4], m1f);
#define TOP(j, mask, s) _mm256_srli_epi16(_mm256_and_si256(r[j], _mm256_set1_epi8((char)(mask))), s)
    hi[2] = _mm256_or_si256(TOP(0, 0xE0, 5), TOP(1, 0x60, 2));
    lo[3] = _mm256_or_si256(_mm256_or_si256(TOP(1, 0x80, 7), TOP(2, 0xE0, 4)), TOP(3, 0x20, 1));
    hi[3] = _mm256_or_si256(TOP(3, 0xC0, 6), TOP(4, 0xE0, 3));
#undef TOP
}

/* The pair registers of a grouped Q6_K super-block (q6_k_pairs of quant_matvec_int8_avx2.c makes
 * the same from the stored layout): the 256-bit run r (0..5) at
 * 32r holds register r of lo[0], hi[0], lo[1], hi[1], lo[2], hi[2] in the low 6 bits of each
 * byte, and in bits 6..7 bits 2 (r mod 3)..2 (r mod 3) + 1 of lo[3] (r < 3) or hi[3] (r >= 3):
 * 6 loads, 6 masks, and each of lo[3], hi[3] put together from the top bits of three runs (each
 * masked before its 16-bit shift, so no bit crosses into the neighbouring byte). The same bytes
 * q as the stored layout, with 22 vector instructions instead of 34 and no inserts. */
static inline void q6_k_grouped_pairs(const uint8_t *b, __m256i lo[4], __m256i hi[4]) {
    const __m256i m3f = _mm256_set1_epi8(0x3F);
    __m256i r[6], top[6];
    for (int j = 0; j < 6; j++) {
        r[j] = _mm256_loadu_si256((const __m256i *)(b + 32 * j));
        top[j] = _mm256_andnot_si256(m3f, r[j]);   /* bits 6..7 */
    }
    for (int k = 0; k < 3; k++) {
        lo[k] = _mm256_and_si256(r[2 * k], m3f);
        hi[k] = _mm256_and_si256(r[2 * k + 1], m3f);
    }
    lo[3] = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(top[0], 6), _mm256_srli_epi16(top[1], 4)), _mm256_srli_epi16(top[2], 2));
    hi[3] = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(top[3], 6), _mm256_srli_epi16(top[4], 4)), _mm256_srli_epi16(top[5], 2));
}

/* The pair registers of a grouped Q3_K super-block (q3_k_pairs of quant_matvec_int8_avx2.c makes
 * the same from the stored layout: u = low 2 bits + 4 * high bit, 0..7): the 256-bit run r
 * (0..2) at 32r holds lo[r] in bits 0..2 and hi[r] in bits 3..5 of each byte, and in bits 6..7
 * bits 2r..2r+1 of W = lo[3] | hi[3] << 3 (so lo[3] = bits 6..7 of run 0 and bit 6 of run 1,
 * hi[3] = bit 7 of run 1 and bits 6..7 of run 2). Every 16-bit shift is followed by a mask that
 * keeps only bits of the same byte. The same bytes u as the stored layout, with 3 whole loads
 * and 19 vector instructions (10 masks, 7 shifts, 2 ors) instead of 6 128-bit loads, 4 inserts
 * and 39 masks, shifts and ors. */
static inline void q3_k_grouped_pairs(const uint8_t *b, __m256i lo[4], __m256i hi[4]) {
    const __m256i m7 = _mm256_set1_epi8(7);
    __m256i r[3];
    for (int k = 0; k < 3; k++) {
        r[k] = _mm256_loadu_si256((const __m256i *)(b + 32 * k));
        lo[k] = _mm256_and_si256(r[k], m7);
        hi[k] = _mm256_and_si256(_mm256_srli_epi16(r[k], 3), m7);
    }
    lo[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r[0], 6), _mm256_set1_epi8(3)),
                            _mm256_and_si256(_mm256_srli_epi16(r[1], 4), _mm256_set1_epi8(4)));
    hi[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(r[1], 7), _mm256_set1_epi8(1)),
                            _mm256_and_si256(_mm256_srli_epi16(r[2], 5), _mm256_set1_epi8(6)));
}

#endif
