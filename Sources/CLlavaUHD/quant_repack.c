/* Row-interleaved ("repacked") copies of Q8_0, Q4_0 and Q4_K matrices for the int8 VNNI
 * matrix-vector kernels of quant_repacked_vnni.c (declared in quant_kernels.h).
 *
 * A matrix of R rows (R a multiple of 4) and K columns (a multiple of 256) is cut into groups of
 * 256 weights along each row (8 blocks of 32, or one K super-block; G bytes: Q8_0 272, Q4_0 and
 * Q4_K 144). Rows 4q..4q+3 form row block q, which starts at q * 4 * row_bytes (the
 * copy has exactly the original size); in it, group g of the 4 rows takes the 4G bytes at
 * g * 4G, so a kernel working on 4 rows reads one stream and the same prepared x for all four.
 * Each row's group is reordered so that whole 64-byte loads feed vpdpbusd:
 *   Q8_0: row j's group at jG: 16 bytes of its 8 f16 scales, then the 8 blocks' 256 int8 quants
 *         as the 4 operands of the kernels (64 bytes each; quant_vnni_common.h): 32-bit lane
 *         b + 8h of operand k holds quants g8_base(k) + 4h .. + 3 of block b.
 *   Q4_0: row j's group at jG: 16 bytes of its 8 f16 scales, then 2 x 64 bytes: 32-bit lane
 *         b + 8h of the first holds the nibble bytes 4h .. 4h + 3 of block b (its low nibbles
 *         are operand 0, its high ones operand 1), of the second bytes 8 + 4h .. (operands 2, 3).
 *   Q4_K: a 64-byte header for the 4 rows, then row j's nibbles at 64 + 128j, two chunks of 64
 *         bytes: byte i of chunk h holds element 128h + i in its low nibble and 128h + 64 + i in
 *         its high one. The header: 8 f16 (d of rows 0-3, then dmin of rows 0-3), then the 64
 *         six-bit scales and mins v[0..63] of the 4 rows, v[32k + 8j + t] = scale (k = 0) or min
 *         (k = 1) of sub-block t of row j, as 32 bytes of low nibbles (byte i: v[i] low, v[32 + i]
 *         high) and 16 bytes of top bit pairs (byte i: v[i], v[16 + i], v[32 + i], v[48 + i] at
 *         bits 0, 2, 4, 6), so that a few whole-register operations give all 64 as bytes.
 * Every value keeps its bits: only positions change, so luhd_quant_repack_rows_restore gives the
 * original bytes back. */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <string.h>

int luhd_quant_repack_supports(int format, long rows, long cols) {
    if (rows <= 0 || rows % 4 != 0 || cols <= 0 || cols % 256 != 0) return 0;
    return format == LUHD_QF_Q8_0 || format == LUHD_QF_Q4_0 || format == LUHD_QF_Q4_K;
}

/* Bytes of one group of 256 weights of one row. */
static size_t group_bytes(int format) { return format == LUHD_QF_Q8_0 ? 272 : 144; }

/* Q4_K nibbles: in each 64-byte half h, with A = bytes 0-31 and B = bytes 32-63: stored, A holds
 * elements 64h + 0..31 (low nibbles) and 64h + 32..63 (high), B the next 64; repacked, A holds
 * elements 0..31 and 64..95 of the half, B 32..63 and 96..127. Both ways: A' = lo(A) | lo(B) << 4,
 * B' = hi(A) | hi(B) << 4 (the map is its own inverse). */
static void q4_k_nibbles(const uint8_t *src, uint8_t *dst) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *a = src + 64 * h, *b = a + 32;
        uint8_t *ra = dst + 64 * h, *rb = ra + 32;
        for (int j = 0; j < 32; j++) {
            ra[j] = (uint8_t)((a[j] & 0x0F) | (b[j] & 0x0F) << 4);
            rb[j] = (uint8_t)((a[j] >> 4) | (b[j] & 0xF0));
        }
    }
}

/* Q4_K header of a row block (see the top): value v = 32 k + 8 j + t of the 64 is kept as its low
 * nibble in byte v % 32 of L (bits 4 (v / 32)) and its top two bits in byte v % 16 of T (bits
 * 2 (v / 16)). */
static void q4_k_put_value(uint8_t *hdr, int v, int value) {
    uint8_t *lo = hdr + 16 + v % 32, *top = hdr + 48 + v % 16;
    const int ls = 4 * (v / 32), ts = 2 * (v / 16);
    *lo = (uint8_t)((*lo & ~(0x0F << ls)) | (value & 0x0F) << ls);
    *top = (uint8_t)((*top & ~(3 << ts)) | (value >> 4) << ts);
}

static int q4_k_get_value(const uint8_t *hdr, int v) {
    return (hdr[16 + v % 32] >> (4 * (v / 32)) & 0x0F) | (hdr[48 + v % 16] >> (2 * (v / 16)) & 3) << 4;
}

/* Q8_0 / Q4_0 quants of one row's group. Packed, 32-bit lane l = b + 8h of 64-byte register k
 * holds bytes base(k) + 4h .. + 3 of block b's quants, base = 0, 16, 8, 24 for Q8_0's 4 operands
 * (g8_base of quant_vnni_common.h), 0 and 8 for Q4_0's 2 registers of nibble bytes. So 16 bytes
 * of a block (its bytes 0-15 from registers 0 and 2 for Q8_0, or 0 and 1 for Q4_0; bytes 16-31
 * from registers 1 and 3) are 4 words, one from each of 4 rows of 8 words (the halves of two
 * registers): a 4 x 8 transpose of 32-bit words, both ways. */

/* Rows a, b, c, d of 8 words (32 bytes each) to the 16 bytes at out + stride * i, i = 0..7
 * (word j of those: row j's word i). */
static inline void words_to_blocks(const uint8_t *a, const uint8_t *b, const uint8_t *c, const uint8_t *d, uint8_t *out,
                                   size_t stride) {
    const __m256i A = _mm256_loadu_si256((const __m256i *)a), B = _mm256_loadu_si256((const __m256i *)b);
    const __m256i C = _mm256_loadu_si256((const __m256i *)c), D = _mm256_loadu_si256((const __m256i *)d);
    const __m256i ab0 = _mm256_unpacklo_epi32(A, B), ab1 = _mm256_unpackhi_epi32(A, B);
    const __m256i cd0 = _mm256_unpacklo_epi32(C, D), cd1 = _mm256_unpackhi_epi32(C, D);
    const __m256i r[4] = {_mm256_unpacklo_epi64(ab0, cd0), _mm256_unpackhi_epi64(ab0, cd0),
                          _mm256_unpacklo_epi64(ab1, cd1), _mm256_unpackhi_epi64(ab1, cd1)};
    for (int i = 0; i < 4; i++) {   /* r[i] holds blocks i and i + 4 */
        _mm_storeu_si128((__m128i *)(out + stride * (size_t)i), _mm256_castsi256_si128(r[i]));
        _mm_storeu_si128((__m128i *)(out + stride * (size_t)(i + 4)), _mm256_extracti128_si256(r[i], 1));
    }
}

/* The inverse of words_to_blocks. */
static inline void blocks_to_words(const uint8_t *in, size_t stride, uint8_t *a, uint8_t *b, uint8_t *c, uint8_t *d) {
    __m256i R[4];
    for (int i = 0; i < 4; i++)
        R[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(in + stride * (size_t)i))),
                                       _mm_loadu_si128((const __m128i *)(in + stride * (size_t)(i + 4))), 1);
    const __m256i t0 = _mm256_unpacklo_epi32(R[0], R[1]), t1 = _mm256_unpackhi_epi32(R[0], R[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(R[2], R[3]), t3 = _mm256_unpackhi_epi32(R[2], R[3]);
    _mm256_storeu_si256((__m256i *)a, _mm256_unpacklo_epi64(t0, t2));
    _mm256_storeu_si256((__m256i *)b, _mm256_unpackhi_epi64(t0, t2));
    _mm256_storeu_si256((__m256i *)c, _mm256_unpacklo_epi64(t1, t3));
    _mm256_storeu_si256((__m256i *)d, _mm256_unpackhi_epi64(t1, t3));
}

/* Moves the quants between `packed` (a row's group after its 16 bytes of scales) and `stored`
 * (the 8 blocks of the stored layout). */
static void q8_q4_quants(int format, uint8_t *packed, uint8_t *stored, int to_packed) {
    const int q8 = format == LUHD_QF_Q8_0;
    const size_t bb = q8 ? 34 : 18;
    /* Q8_0: bytes 0-15 from registers 0, 2; bytes 16-31 from 1, 3. Q4_0: bytes 0-15 from 0, 1. */
    for (int half = 0; half < (q8 ? 2 : 1); half++) {
        uint8_t *r0 = packed + 16 + 64 * half, *r1 = q8 ? r0 + 128 : r0 + 64;
        if (to_packed) blocks_to_words(stored + 2 + 16 * half, bb, r0, r0 + 32, r1, r1 + 32);
        else words_to_blocks(r0, r0 + 32, r1, r1 + 32, stored + 2 + 16 * half, bb);
    }
}

/* Moves row j's group of 256 weights from the stored layout (src, G bytes) into its places in
 * the group of its row block (grp, 4G bytes), writing only row j's bits. */
static void put_row(int format, const uint8_t *src, uint8_t *grp, int j) {
    const size_t gb = group_bytes(format);
    switch (format) {
    case LUHD_QF_Q8_0:
    case LUHD_QF_Q4_0: {
        uint8_t *dst = grp + gb * (size_t)j;
        const size_t bb = format == LUHD_QF_Q8_0 ? 34 : 18;
        for (int b = 0; b < 8; b++) memcpy(dst + 2 * b, src + bb * (size_t)b, 2);
        q8_q4_quants(format, dst, (uint8_t *)src, 1);
        break;
    }
    default: /* Q4_K */
        memcpy(grp + 2 * j, src, 2);
        memcpy(grp + 8 + 2 * j, src + 2, 2);
        for (int t = 0; t < 8; t++) {
            int sc, mn;
            luhd_q4k_scale_min(src + 4, t, &sc, &mn);
            q4_k_put_value(grp, 8 * j + t, sc);
            q4_k_put_value(grp, 32 + 8 * j + t, mn);
        }
        q4_k_nibbles(src + 16, grp + 64 + 128 * j);
        break;
    }
}

/* The inverse of put_row: row j's group back in the stored layout (dst, G bytes). */
static void get_row(int format, const uint8_t *grp, int j, uint8_t *dst) {
    const size_t gb = group_bytes(format);
    switch (format) {
    case LUHD_QF_Q8_0:
    case LUHD_QF_Q4_0: {
        uint8_t *src = (uint8_t *)grp + gb * (size_t)j;
        const size_t bb = format == LUHD_QF_Q8_0 ? 34 : 18;
        for (int b = 0; b < 8; b++) memcpy(dst + bb * (size_t)b, src + 2 * b, 2);
        q8_q4_quants(format, src, dst, 0);
        break;
    }
    default: { /* Q4_K */
        memcpy(dst, grp + 2 * j, 2);
        memcpy(dst + 2, grp + 8 + 2 * j, 2);
        int sc[8], mn[8];
        for (int t = 0; t < 8; t++) {
            sc[t] = q4_k_get_value(grp, 8 * j + t);
            mn[t] = q4_k_get_value(grp, 32 + 8 * j + t);
        }
        /* luhd_q4k_scale_min read backwards. */
        uint8_t *s = dst + 4;
        for (int t = 0; t < 4; t++) {
            s[t] = (uint8_t)(sc[t] | (sc[t + 4] >> 4) << 6);
            s[t + 4] = (uint8_t)(mn[t] | (mn[t + 4] >> 4) << 6);
            s[t + 8] = (uint8_t)((sc[t + 4] & 0x0F) | (mn[t + 4] & 0x0F) << 4);
        }
        q4_k_nibbles(grp + 64 + 128 * j, dst + 16);
        break;
    }
    }
}

void luhd_quant_repack_rows(int format, const void *src, size_t row_bytes, long r0, long r1, long cols, void *dst) {
    const size_t gb = group_bytes(format), ng = (size_t)cols / 256;
    for (long r = r0; r < r1; r++) {
        const uint8_t *s = (const uint8_t *)src + (size_t)r * row_bytes;
        uint8_t *d = (uint8_t *)dst + (size_t)(r / 4) * 4 * row_bytes;
        for (size_t g = 0; g < ng; g++) put_row(format, s + g * gb, d + g * 4 * gb, (int)(r % 4));
    }
}

void luhd_quant_repack_rows_restore_columns(int format, const void *repacked, size_t row_bytes, long r0, long r1,
                                            long k0, long k1, void *dst) {
    const size_t gb = group_bytes(format);
    for (long r = r0; r < r1; r++) {
        const uint8_t *s = (const uint8_t *)repacked + (size_t)(r / 4) * 4 * row_bytes;
        uint8_t *d = (uint8_t *)dst + (size_t)(r - r0) * row_bytes;
        for (size_t g = (size_t)(k0 / 256); g < (size_t)(k1 / 256); g++) get_row(format, s + g * 4 * gb, (int)(r % 4), d + g * gb);
    }
}

void luhd_quant_repack_rows_restore(int format, const void *repacked, size_t row_bytes, long r0, long r1, long cols,
                                    void *dst) {
    luhd_quant_repack_rows_restore_columns(format, repacked, row_bytes, r0, r1, 0, cols, dst);
}
