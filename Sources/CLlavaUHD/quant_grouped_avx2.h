/* The 8 pair registers (lo[k] / hi[k]: the weights of elements 0..15 / 16..31 of sub-blocks k
 * and k + 4) of a super-block in the scale-grouped Q3_K, Q5_K and Q6_K layouts (quant_repack_avx2.c
 * describes them), shared by the int8 AVX2 decode kernel (quant_matvec_int8_avx2.c) and the
 * restore of the stored layout for prefill (quant_repack_avx2.c), so both read the layout the
 * same way; and Q3_K's and Q5_K's from the stored layout (with the nibble loads they are built
 * from), which both the kernel and the making of the Q3_K and Q5_K copies read. Include after a
 * `#pragma clang attribute push` that enables AVX2. */
#ifndef LUHD_QUANT_GROUPED_AVX2_H
#define LUHD_QUANT_GROUPED_AVX2_H
#include <immintrin.h>
#include <stdint.h>

/* Bytes 0..15 at a in the low 128 bits, bytes 0..15 at b in the high 128 bits. */
static inline __m256i load_pair(const uint8_t *a, const uint8_t *b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                   _mm_loadu_si128((const __m128i *)b), 1);
}

/* The low nibbles (lo) and high nibbles (hi) of the 32 bytes of q, each as a byte 0..15. */
static inline void split_nibbles(__m256i q, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
}

/* The low nibbles (lo) and high nibbles (hi) of the 16 bytes at a (low 128 bits) and at c
 * (high 128 bits): elements 0..15 and 16..31 of two blocks of the 32-block formats. */
static inline void nibble_pair(const uint8_t *a, const uint8_t *c, __m256i *lo, __m256i *hi) {
    split_nibbles(load_pair(a, c), lo, hi);
}

/* The 16 bytes at p in the low 128 bits and their high nibbles (each as 0..15) in the high 128
 * bits: a bit-plane register of Q3_K's hmask or Q5_K's qh, so that bit k of a byte reads
 * sub-block k in the low half and sub-block k + 4 in the high half. */
static inline __m256i bits_and_high_nibbles(const uint8_t *p) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F)), 1);
}

/* The nibbles of a Q4_K / Q5_K super-block (q: its 128 nibble bytes) as pairs: 32-byte run c
 * holds sub-block 2c (low nibbles) and 2c + 1 (high nibbles), byte l giving element l of each.
 * Pair k = sub-blocks k, k + 4: runs 0 and 2 give pairs 0 (low nibbles) and 1 (high), runs 1 and
 * 3 pairs 2 and 3. */
static inline void k_nibbles(const uint8_t *q, __m256i lo[4], __m256i hi[4]) {
    for (int c = 0; c < 2; c++) {
        nibble_pair(q + 32 * c, q + 32 * c + 64, &lo[2 * c], &lo[2 * c + 1]);
        nibble_pair(q + 32 * c + 16, q + 32 * c + 80, &hi[2 * c], &hi[2 * c + 1]);
    }
}

/* Q5_K: 176-byte super-blocks (Q4_K's header, 32 bytes qh, 128 nibble bytes): element l of
 * sub-block j has bit j of qh[l] above its nibble. The low half of a pair holds sub-block k, the
 * high half k + 4, so the high half reads qh shifted right by 4: bit k of every byte is then
 * moved to bit 4 by one word shift (bits crossing from the neighbouring byte land below bit 4). */
static inline void q5_k_pairs(const uint8_t *b, __m256i lo[4], __m256i hi[4]) {
    k_nibbles(b + 48, lo, hi);
    const __m256i sixteen = _mm256_set1_epi8(16);
    const __m256i qlo = bits_and_high_nibbles(b + 16), qhi = bits_and_high_nibbles(b + 32);
    for (int k = 0; k < 4; k++) {
        const __m128i shift = _mm_cvtsi32_si128(4 - k);
        lo[k] = _mm256_or_si256(lo[k], _mm256_and_si256(_mm256_sll_epi16(qlo, shift), sixteen));
        hi[k] = _mm256_or_si256(hi[k], _mm256_and_si256(_mm256_sll_epi16(qhi, shift), sixteen));
    }
}

/* The pair registers of a grouped Q5_K super-block (q5_k_pairs makes
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

/* Q3_K: 110-byte super-blocks: 32 bytes of high bits (hmask), 64 of 2-bit low parts (qs), 12 of
 * 6-bit scales, f16 d. Element l (0..31) of sub-block t = 4h + s of 32 takes bits 2s of qs[32h + l]
 * and bit t of hmask[l]: u = low + 4 * that bit (0..7), the weight d (sc - 32) (u - 4). Pair k =
 * sub-blocks k (half 0) and k + 4 (half 1): qs bytes 0..31 and 32..63 side by side, hmask in the
 * low half and hmask shifted right by 4 in the high half, so both read bit k. Word shifts keep
 * the bits used inside their byte (low parts: right by 2k <= 6; high bit k to bit 2: by 2 - k).
 * The kernel's registers from the stored layout (the decode kernel's stored path, and the
 * grouped copy's construction in quant_repack_avx2.c). */
static inline void q3_k_pairs(const uint8_t *b, __m256i lo[4], __m256i hi[4]) {
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    const uint8_t *qs = b + 32;
    const __m256i qa = load_pair(qs, qs + 32), qb = load_pair(qs + 16, qs + 48);
    const __m256i ha = bits_and_high_nibbles(b), hb = bits_and_high_nibbles(b + 16);
    for (int k = 0; k < 4; k++) {
        const __m128i shift = _mm_cvtsi32_si128(2 * k);
        const __m256i ta = k == 0 ? _mm256_slli_epi16(ha, 2) : k == 1 ? _mm256_slli_epi16(ha, 1) : k == 2 ? ha : _mm256_srli_epi16(ha, 1);
        const __m256i tb = k == 0 ? _mm256_slli_epi16(hb, 2) : k == 1 ? _mm256_slli_epi16(hb, 1) : k == 2 ? hb : _mm256_srli_epi16(hb, 1);
        lo[k] = _mm256_or_si256(_mm256_and_si256(_mm256_srl_epi16(qa, shift), m3), _mm256_and_si256(ta, four));
        hi[k] = _mm256_or_si256(_mm256_and_si256(_mm256_srl_epi16(qb, shift), m3), _mm256_and_si256(tb, four));
    }
}

/* The pair registers of a grouped Q3_K super-block (q3_k_pairs makes the same from the stored
 * layout: u = low 2 bits + 4 * high bit, 0..7): the 256-bit run r
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
