/* Scale-grouped copies of Q4_0, IQ4_NL, IQ4_XS, Q8_0, Q3_K, Q4_K, Q5_K and Q6_K matrices for the int8 AVX2
 * matrix-vector kernels (luhd_quant_matvec_grouped in quant_matvec_int8_avx2.c; declared in quant_kernels.h).
 *
 * Q4_0, IQ4_NL (Q4_0's block: f16 d, 16 bytes of 4-bit indices) and Q8_0. The stored layout
 * puts each block's f16 scale d ahead of its quants, so the 8 scales of a group of 8 blocks lie
 * 18 (Q4_0, IQ4_NL) or 34 (Q8_0) bytes apart: the kernels gathered them
 * one 16-bit load at a time, about a third of Q4_0's instructions per group (BENCHMARKS.md
 * notes:decode10), and loaded each block's quants as 16-byte halves of a 256-bit register. The
 * grouped copy keeps every row where it was (row r at r * row_bytes, the same size) and reorders
 * the bytes inside each group of 8 blocks of a row (G = 8 * block bytes: Q4_0 / IQ4_NL 144,
 * Q8_0 272):
 *   bytes 0..15    the 8 f16 scales d of blocks 0..7, in block order (one 128-bit load);
 *   then, for pair k = 0..3 (blocks k and k + 4, the pair order of the prepared x), for each
 *   16-byte half h of a block's quants (Q4_0, IQ4_NL: one, its 16 nibble bytes; Q8_0: two, quants
 *   0..15 and 16..31), half h of block k then half h of block k + 4: pair k's 32 * H bytes
 *   at 16 + 32 H k (H halves), each half-pair one 256-bit load.
 * The blocks after the last whole group of a row (rows whose block count is not a multiple of
 * 8) keep the stored layout.
 *
 * Q4_K. Each 144-byte super-block (f16 d, f16 dmin, 12 bytes packing the 6-bit scales sc_j and
 * mins m_j of sub-blocks j = 0..7 as luhd_q4k_scale_min reads them, 128 nibble bytes: 32-byte
 * chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its high ones, byte l element l)
 * stays where it is and becomes, in the same 144 bytes:
 *   bytes 0..3     d, dmin (as stored);
 *   bytes 4..11    byte j = sc_j | (m_j >> 4) << 6 (one 64-bit load widened to 8 lanes gives
 *                  every scale with one mask and the top bits of every min with one shift);
 *   bytes 12..15   a little-endian u32 whose bits 4j..4j+3 are m_j & 15 (broadcast, one
 *                  variable shift per lane);
 *   bytes 16..143  the nibble bytes in the pair order: at 16 + 32 (2c + h) (c, h = 0, 1) bytes
 *                  16h..16h+15 of chunk c then of chunk c + 2, i.e. elements 16h..16h+15 of
 *                  sub-blocks 2c / 2c + 1 (low 128 bits) and 2c + 4 / 2c + 5 (high), one
 *                  256-bit load for two pairs (the stored layout: two 128-bit loads and an
 *                  insert, and the 12 bytes unpacked by 11 vector instructions, not 6).
 * The 96 bits of scales and mins are the stored ones rearranged.
 *
 * Q5_K. Each 176-byte super-block (Q4_K's 16-byte header, 32 bytes qh: bit j of byte l the fifth
 * bit of element l of sub-block j, then Q4_K's 128 nibble bytes; the kernel's registers lo[k] /
 * hi[k] hold the 5-bit weights of elements 0..15 / 16..31 of sub-blocks k and k + 4, as
 * q5_k_pairs in quant_matvec_int8_avx2.c builds them with 46 vector instructions, 6 of them
 * inserts) stays where it is, the same 176 bytes:
 *   bytes 0..15    Q4_K's grouped header (above);
 *   bytes 16..175  five 32-byte runs: byte i of run r holds byte i of register r of lo[0], hi[0],
 *                  lo[1], hi[1], lo[2] in bits 0..4, and in bits 5..7 bits 3r..3r+2 of
 *                  W = hi[2] | lo[3] << 5 | hi[3] << 10 (byte i of each); 5 whole 256-bit loads
 *                  and 23 vector instructions make the 8 registers (q5_k_grouped_pairs).
 * The scales, mins and 1280 bits of weights are the stored ones rearranged.
 *
 * Q6_K. Each 210-byte super-block (128 bytes ql of low nibbles, 64 bytes qh of 2-bit high parts,
 * 16 int8 scales, f16 d; the kernel's registers lo[k] / hi[k], k = 0..3, hold the 6-bit weights
 * of elements 0..15 / 16..31 of sub-blocks k (low 128 bits) and k + 4 (high), as
 * q6_k_pairs in quant_matvec_int8_avx2.c builds them from 6 pairs of 128-bit loads, 10 shifts and
 * 24 masks and ors) stays where it is, the same 210 bytes:
 *   bytes 0..191   six 32-byte runs: byte i of run r holds byte i of register r of lo[0], hi[0],
 *                  lo[1], hi[1], lo[2], hi[2] in bits 0..5, and in bits 6..7 bits
 *                  2 (r mod 3)..2 (r mod 3) + 1 of byte i of lo[3] (runs 0..2) or hi[3] (runs 3..5);
 *                  the 6 runs are whole 256-bit loads, and 22 vector instructions make the 8
 *                  registers (q6_k_grouped_pairs);
 *   bytes 192..209 the scales and d as stored.
 * The 1536 bits of weights are the stored ones rearranged.
 *
 * Q3_K. Each 110-byte super-block (32 bytes hmask: bit t of byte l the high bit of element l of
 * sub-block t; 64 bytes qs: bits 2s of byte 32h + l the low 2 bits of element l of sub-block
 * 4h + s; 12 bytes of 6-bit scales; f16 d; the kernel's registers lo[k] / hi[k] hold
 * u = low + 4 * high (0..7) of elements 0..15 / 16..31 of sub-blocks k (low 128 bits) and k + 4
 * (high), as q3_k_pairs in quant_grouped_avx2.h builds them with 6 128-bit loads, 4 inserts
 * and 39 masks, shifts and ors) stays where it is, the same 110 bytes:
 *   bytes 0..95    three 32-byte runs: byte i of run r holds byte i of lo[r] in bits 0..2, of
 *                  hi[r] in bits 3..5, and in bits 6..7 bits 2r..2r+1 of W = lo[3] | hi[3] << 3
 *                  (byte i of each); 3 whole 256-bit loads and 19 vector instructions make the
 *                  8 registers (q3_k_grouped_pairs);
 *   bytes 96..109  the 12 scale bytes and d as stored.
 * The 768 bits of weights are the stored ones rearranged.
 *
 * IQ4_XS. Each 136-byte super-block (f16 d, a u16 holding the high 2 bits of the 6-bit scale ls_j
 * of sub-block j at bits 2j, a u32 holding its low 4 bits at bits 4j, then 8 x 16 index bytes,
 * sub-block j's at 8 + 16j laid out as an IQ4_NL block's; the stored layout took 2 pairs of
 * 128-bit loads and an insert per pair and 2 broadcasts, 2 variable shifts, 2 masks, a shift, an
 * or and a subtraction for the scales) stays where it is, the same 136 bytes:
 *   bytes 0..1     d (as stored);
 *   bytes 2..7     a 48-bit little-endian field whose bits 6j..6j+5 are ls_j - 32 in 6-bit two's
 *                  complement (ls_j ^ 32): one 64-bit load, a vpshufb, a variable shift and an
 *                  arithmetic shift give the 8 signed scales (iq4_xs_grouped_scales);
 *   bytes 8..135   pair k's index bytes at 8 + 32k: sub-block k's 16 then sub-block k + 4's (one
 *                  256-bit load a pair, as the grouped IQ4_NL layout).
 * The 48 bits of scales are the stored ones rearranged (ls_j ^ 32 is a bijection of 0..63), so
 * every copy is a bijection:
 * luhd_quant_grouped_rows_restore_columns gives the stored bytes back (for the int8 AVX2 matrix
 * product of prefill, which reads the stored layout). */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#include "quant_grouped_avx2.h"

/* Whether the format's grouped copy works super-block by super-block (256 weights). */
static int super_block_format(int format) {
    return format == LUHD_QF_Q3_K || format == LUHD_QF_Q4_K || format == LUHD_QF_Q5_K || format == LUHD_QF_Q6_K
           || format == LUHD_QF_IQ4_XS;
}

int luhd_quant_grouped_supports(int format, long cols) {
    if (cols < 256 || cols % 32 != 0) return 0;
    return format == LUHD_QF_Q4_0 || format == LUHD_QF_IQ4_NL || format == LUHD_QF_Q8_0
           || (super_block_format(format) && cols % 256 == 0);
}

/* Bytes of one block of a supported 32-block format. */
static size_t block_bytes(int format) { return format == LUHD_QF_Q8_0 ? 34 : 18; }

/* The first 16 bytes of a Q4_K or Q5_K super-block from the stored layout (s) to the grouped one
 * (g): d, dmin, then the scales and mins re-packed. */
static void q4_k_to_grouped_header(const uint8_t *s, uint8_t *g) {
    memcpy(g, s, 4);
    uint32_t mins = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        luhd_q4k_scale_min(s + 4, j, &sc, &m);
        g[4 + j] = (uint8_t)(sc | (m >> 4) << 6);
        mins |= (uint32_t)(m & 15) << (4 * j);
    }
    memcpy(g + 12, &mins, 4);
}

/* One Q4_K super-block from the stored layout (s) to the grouped one (g); the buffers do not
 * overlap. */
static void q4_k_to_grouped(const uint8_t *s, uint8_t *g) {
    q4_k_to_grouped_header(s, g);
    for (int c = 0; c < 2; c++)
        for (int h = 0; h < 2; h++) {
            memcpy(g + 16 + 32 * (2 * c + h), s + 16 + 32 * c + 16 * h, 16);
            memcpy(g + 32 + 32 * (2 * c + h), s + 16 + 32 * (c + 2) + 16 * h, 16);
        }
}

/* The inverse of q4_k_to_grouped_header: the stored first 16 bytes (s) from the grouped ones (g).
 * The stored 12 bytes: for j < 4, byte j = sc_j | (sc_{j+4} >> 4) << 6, byte j + 4 = m_j |
 * (m_{j+4} >> 4) << 6, byte j + 8 = (sc_{j+4} & 15) | (m_{j+4} & 15) << 4. */
static void q4_k_to_stored_header(const uint8_t *g, uint8_t *s) {
    memcpy(s, g, 4);
    uint32_t mins;
    memcpy(&mins, g + 12, 4);
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = g[4 + j] & 63;
        m[j] = (int)((mins >> (4 * j)) & 15) | (g[4 + j] >> 6) << 4;
    }
    for (int j = 0; j < 4; j++) {
        s[4 + j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[8 + j] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[12 + j] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* The inverse of q4_k_to_grouped: the stored super-block (s) from the grouped one (g). */
static void q4_k_to_stored(const uint8_t *g, uint8_t *s) {
    q4_k_to_stored_header(g, s);
    for (int c = 0; c < 2; c++)
        for (int h = 0; h < 2; h++) {
            memcpy(s + 16 + 32 * c + 16 * h, g + 16 + 32 * (2 * c + h), 16);
            memcpy(s + 16 + 32 * (c + 2) + 16 * h, g + 32 + 32 * (2 * c + h), 16);
        }
}

/* Byte l (0..31) of sub-block t (0..3) of half h of a stored Q6_K super-block s: the 6-bit weight. */
static inline uint8_t q6_k_stored_weight(const uint8_t *s, int h, int t, int l) {
    return (uint8_t)(((s[64 * h + 32 * (t & 1) + l] >> (4 * (t >> 1))) & 15) | ((s[128 + 32 * h + l] >> (2 * t)) & 3) << 4);
}

/* One Q6_K super-block from the stored layout (s) to the grouped one (g); the buffers do not
 * overlap. Register v (0..7: lo[0], hi[0], .., lo[3], hi[3]) byte i is element 16 (v & 1) + i % 16
 * of sub-block v / 2 of half i / 16. */
static void q6_k_to_grouped(const uint8_t *s, uint8_t *g) {
    uint8_t v[8][32];
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 32; i++) v[r][i] = q6_k_stored_weight(s, i / 16, r / 2, 16 * (r & 1) + i % 16);
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < 32; i++) g[32 * r + i] = (uint8_t)(v[r][i] | ((v[6 + r / 3][i] >> (2 * (r % 3))) & 3) << 6);
    memcpy(g + 192, s + 192, 18);
}

/* The low nibbles of a's bytes, with the low nibbles of b's bytes above them: the stored
 * nibble bytes of two registers of weights. */
static inline __m256i nibble_bytes(__m256i a, __m256i b) {
    const __m256i m0f = _mm256_set1_epi8(0x0F);
    return _mm256_or_si256(_mm256_and_si256(a, m0f), _mm256_slli_epi16(_mm256_and_si256(b, m0f), 4));
}

/* The inverse of q6_k_to_grouped: the stored super-block (s) from the grouped one (g). Restoring
 * prefill tiles runs this for every tile, so it works on whole registers: the 8 registers of
 * weights as the kernel makes them (q6_k_grouped_pairs), then A = low nibbles of lo[0] | those of
 * lo[2] << 4 (ql bytes 0..15 of half 0 in its low 128 bits, of half 1 in its high ones), B the
 * same of hi[0], hi[2] (bytes 16..31), C, D of lo[1], lo[3] and hi[1], hi[3] (ql bytes 32..63 of
 * each half), E, F the 2-bit high parts of lo[k] (hi[k]) at bits 2k (qh bytes 0..15 / 16..31). */
static void q6_k_to_stored(const uint8_t *g, uint8_t *s) {
    const __m256i m30 = _mm256_set1_epi8(0x30);
    __m256i lo[4], hi[4];
    q6_k_grouped_pairs(g, lo, hi);
    for (int e = 0; e < 2; e++) {   /* e = 0: lo[k], elements 0..15; e = 1: hi[k], 16..31 */
        const __m256i *q = e ? hi : lo;
        const __m256i n02 = nibble_bytes(q[0], q[2]), n13 = nibble_bytes(q[1], q[3]);
        const __m256i hh = _mm256_or_si256(
            _mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(q[0], m30), 4), _mm256_srli_epi16(_mm256_and_si256(q[1], m30), 2)),
            _mm256_or_si256(_mm256_and_si256(q[2], m30), _mm256_slli_epi16(_mm256_and_si256(q[3], m30), 2)));
        for (int h = 0; h < 2; h++) {
            _mm_storeu_si128((__m128i *)(s + 64 * h + 16 * e), h ? _mm256_extracti128_si256(n02, 1) : _mm256_castsi256_si128(n02));
            _mm_storeu_si128((__m128i *)(s + 64 * h + 32 + 16 * e), h ? _mm256_extracti128_si256(n13, 1) : _mm256_castsi256_si128(n13));
            _mm_storeu_si128((__m128i *)(s + 128 + 32 * h + 16 * e), h ? _mm256_extracti128_si256(hh, 1) : _mm256_castsi256_si128(hh));
        }
    }
    memcpy(s + 192, g + 192, 18);
}

/* One Q5_K super-block from the stored layout (s) to the grouped one (g); the buffers do not
 * overlap. The kernel's 8 registers of weights from the stored layout (q5_k_pairs: lo[0], hi[0],
 * .., lo[3], hi[3], 5 bits a byte), then run r (0..4) = register r | bits 3r..3r+2 of W = hi[2] |
 * lo[3] << 5 | hi[3] << 10 at bits 5..7, built byte by byte from the three registers' bits (each
 * 16-bit shift masked to its own byte; a 3-bit value shifted left by 5 stays in its byte). */
static void q5_k_to_grouped(const uint8_t *s, uint8_t *g) {
    q4_k_to_grouped_header(s, g);
    __m256i lo[4], hi[4];
    q5_k_pairs(s, lo, hi);
    const __m256i m1 = _mm256_set1_epi8(1), m3 = _mm256_set1_epi8(3), m7 = _mm256_set1_epi8(7);
    const __m256i top[5] = {
        _mm256_and_si256(hi[2], m7),                                                           /* W bits 0..2 */
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(hi[2], 3), m3),
                        _mm256_slli_epi16(_mm256_and_si256(lo[3], m1), 2)),                    /* 3..5 */
        _mm256_and_si256(_mm256_srli_epi16(lo[3], 1), m7),                                     /* 6..8 */
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo[3], 4), m1),
                        _mm256_slli_epi16(_mm256_and_si256(hi[3], m3), 1)),                    /* 9..11 */
        _mm256_and_si256(_mm256_srli_epi16(hi[3], 2), m7),                                     /* 12..14 */
    };
    const __m256i runs[5] = {lo[0], hi[0], lo[1], hi[1], lo[2]};
    for (int r = 0; r < 5; r++)
        _mm256_storeu_si256((__m256i *)(g + 16 + 32 * r), _mm256_or_si256(runs[r], _mm256_slli_epi16(top[r], 5)));
}

/* The inverse of q5_k_to_grouped: the stored super-block (s) from the grouped one (g), on whole
 * registers (restoring prefill tiles runs this for every tile): the 8 registers of weights as
 * the kernel makes them (q5_k_grouped_pairs), then, for e = 0 (lo[k], elements 0..15) and 1
 * (hi[k], 16..31), the nibbles of lo[0] | lo[1] << 4 (chunk 0 in the low 128 bits, chunk 2 in
 * the high ones: sub-blocks 0, 1 and 4, 5) and of lo[2] | lo[3] << 4 (chunks 1, 3), and the
 * fifth bits of lo[k] at bit k (sub-blocks 0..3 in the low 128 bits, 4..7 in the high). */
static void q5_k_to_stored(const uint8_t *g, uint8_t *s) {
    q4_k_to_stored_header(g, s);
    const __m256i m10 = _mm256_set1_epi8(0x10);
    __m256i lo[4], hi[4];
    q5_k_grouped_pairs(g, lo, hi);
    for (int e = 0; e < 2; e++) {   /* e = 0: lo[k], elements 0..15; e = 1: hi[k], 16..31 */
        const __m256i *q = e ? hi : lo;
        const __m256i n01 = nibble_bytes(q[0], q[1]), n23 = nibble_bytes(q[2], q[3]);
        const __m256i t = _mm256_or_si256(
            _mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(q[0], m10), 4), _mm256_srli_epi16(_mm256_and_si256(q[1], m10), 3)),
            _mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(q[2], m10), 2), _mm256_srli_epi16(_mm256_and_si256(q[3], m10), 1)));
        _mm_storeu_si128((__m128i *)(s + 48 + 16 * e), _mm256_castsi256_si128(n01));
        _mm_storeu_si128((__m128i *)(s + 48 + 64 + 16 * e), _mm256_extracti128_si256(n01, 1));
        _mm_storeu_si128((__m128i *)(s + 48 + 32 + 16 * e), _mm256_castsi256_si128(n23));
        _mm_storeu_si128((__m128i *)(s + 48 + 96 + 16 * e), _mm256_extracti128_si256(n23, 1));
        _mm_storeu_si128((__m128i *)(s + 16 + 16 * e),
                         _mm_or_si128(_mm256_castsi256_si128(t), _mm_slli_epi16(_mm256_extracti128_si256(t, 1), 4)));
    }
}

/* One Q3_K super-block from the stored layout (s) to the grouped one (g); the buffers do not
 * overlap. The 8 registers of u as the stored kernel makes them (q3_k_pairs), then run r =
 * lo[r] | hi[r] << 3 | (bits 2r..2r+1 of W = lo[3] | hi[3] << 3) << 6 (every shifted value stays
 * inside its byte: W <= 63, the masked 2 bits <= 3). */
static void q3_k_to_grouped(const uint8_t *s, uint8_t *g) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i lo[4], hi[4];
    q3_k_pairs(s, lo, hi);
    const __m256i w = _mm256_or_si256(lo[3], _mm256_slli_epi16(hi[3], 3));
    for (int r = 0; r < 3; r++) {
        const __m256i top = _mm256_and_si256(_mm256_srl_epi16(w, _mm_cvtsi32_si128(2 * r)), m3);
        _mm256_storeu_si256((__m256i *)(g + 32 * r),
                            _mm256_or_si256(_mm256_or_si256(lo[r], _mm256_slli_epi16(hi[r], 3)), _mm256_slli_epi16(top, 6)));
    }
    memcpy(g + 96, s + 96, 14);
}

/* The inverse of q3_k_to_grouped: the stored super-block (s) from the grouped one (g), on whole
 * registers (restoring prefill tiles runs this for every tile): the 8 registers of u as the
 * kernel makes them (q3_k_grouped_pairs), then, for e = 0 (lo[k], elements 0..15) and 1 (hi[k],
 * 16..31), the low 2 bits of q[k] at bits 2k (qs bytes 16e.. of half 0 in the low 128 bits, of
 * half 1 in the high ones) and their high bits (bit 2) at bit k (sub-blocks 0..3 in the low 128
 * bits, 4..7 in the high: hmask bytes 16e.. their low and high nibbles). */
static void q3_k_to_stored(const uint8_t *g, uint8_t *s) {
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256i lo[4], hi[4];
    q3_k_grouped_pairs(g, lo, hi);
    for (int e = 0; e < 2; e++) {   /* e = 0: lo[k], elements 0..15; e = 1: hi[k], 16..31 */
        const __m256i *q = e ? hi : lo;
        const __m256i low = _mm256_or_si256(
            _mm256_or_si256(_mm256_and_si256(q[0], m3), _mm256_slli_epi16(_mm256_and_si256(q[1], m3), 2)),
            _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(q[2], m3), 4), _mm256_slli_epi16(_mm256_and_si256(q[3], m3), 6)));
        const __m256i high = _mm256_or_si256(
            _mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(q[0], four), 2), _mm256_srli_epi16(_mm256_and_si256(q[1], four), 1)),
            _mm256_or_si256(_mm256_and_si256(q[2], four), _mm256_slli_epi16(_mm256_and_si256(q[3], four), 1)));
        _mm_storeu_si128((__m128i *)(s + 32 + 16 * e), _mm256_castsi256_si128(low));
        _mm_storeu_si128((__m128i *)(s + 64 + 16 * e), _mm256_extracti128_si256(low, 1));
        _mm_storeu_si128((__m128i *)(s + 16 * e),
                         _mm_or_si128(_mm256_castsi256_si128(high), _mm_slli_epi16(_mm256_extracti128_si256(high, 1), 4)));
    }
    memcpy(s + 96, g + 96, 14);
}

/* One IQ4_XS super-block from the stored layout (s) to the grouped one (g); the buffers do not
 * overlap. */
static void iq4_xs_to_grouped(const uint8_t *s, uint8_t *g) {
    memcpy(g, s, 2);
    uint64_t field = 0;
    for (int j = 0; j < 8; j++) field |= (uint64_t)((luhd_iq4xs_scale(s, j) + 32) ^ 32) << (6 * j);
    for (int i = 0; i < 6; i++) g[2 + i] = (uint8_t)(field >> (8 * i));
    for (int k = 0; k < 4; k++) {
        memcpy(g + 8 + 32 * k, s + 8 + 16 * k, 16);
        memcpy(g + 24 + 32 * k, s + 8 + 16 * (k + 4), 16);
    }
}

/* The inverse of iq4_xs_to_grouped: the stored super-block (s) from the grouped one (g). */
static void iq4_xs_to_stored(const uint8_t *g, uint8_t *s) {
    memcpy(s, g, 2);
    uint64_t field = 0;
    for (int i = 0; i < 6; i++) field |= (uint64_t)g[2 + i] << (8 * i);
    uint32_t high = 0, low = 0;
    for (int j = 0; j < 8; j++) {
        const uint32_t ls = (uint32_t)((field >> (6 * j)) & 63) ^ 32;
        low |= (ls & 15) << (4 * j);
        high |= (ls >> 4) << (2 * j);
    }
    const uint16_t high16 = (uint16_t)high;
    memcpy(s + 2, &high16, 2);
    memcpy(s + 4, &low, 4);
    for (int k = 0; k < 4; k++) {
        memcpy(s + 8 + 16 * k, g + 8 + 32 * k, 16);
        memcpy(s + 8 + 16 * (k + 4), g + 24 + 32 * k, 16);
    }
}

/* Offset of half h of block j's quants (and, for h = -1, of its scale) within a row of ng
 * whole groups of blocks of bb bytes, in the grouped copy; the blocks after the last group keep
 * their stored offsets. */
static size_t grouped_offset(size_t bb, size_t ng, size_t j, int h) {
    const size_t g = j / 8, b = j % 8;
    if (g >= ng) return j * bb + (h < 0 ? 0 : 2 + 16 * (size_t)h);
    const size_t halves = (bb - 2) / 16, base = g * 8 * bb;
    if (h < 0) return base + 2 * b;
    return base + 16 + 32 * halves * (b % 4) + 32 * (size_t)h + 16 * (b / 4);
}

/* Moves block j of one row between its stored place (row + j * bb) and its grouped place
 * (copy row `grouped`), in the direction given. */
static void move_block(size_t bb, size_t ng, size_t j, uint8_t *stored, uint8_t *grouped, int to_grouped) {
    const size_t halves = (bb - 2) / 16;
    for (int h = -1; h < (int)halves; h++) {
        const size_t n = h < 0 ? 2 : 16, s = j * bb + (h < 0 ? 0 : 2 + 16 * (size_t)h), d = grouped_offset(bb, ng, j, h);
        if (to_grouped) memcpy(grouped + d, stored + s, n);
        else memcpy(stored + s, grouped + d, n);
    }
}

/* Moves the 8 blocks of one whole group (block bytes bb, a constant where this is inlined)
 * between `stored` and `grouped`: what move_block does for each, without its offset arithmetic
 * per piece (restoring prefill tiles runs this for every tile). */
static inline __attribute__((always_inline)) void move_group(const size_t bb, uint8_t *stored, uint8_t *grouped,
                                                             int to_grouped) {
    const size_t halves = (bb - 2) / 16;
    for (size_t b = 0; b < 8; b++) {
        uint8_t *s = stored + b * bb, *g = grouped + 16 + 32 * halves * (b % 4) + 16 * (b / 4);
        if (to_grouped) {
            memcpy(grouped + 2 * b, s, 2);
            for (size_t h = 0; h < halves; h++) memcpy(g + 32 * h, s + 2 + 16 * h, 16);
        } else {
            memcpy(s, grouped + 2 * b, 2);
            for (size_t h = 0; h < halves; h++) memcpy(s + 2 + 16 * h, g + 32 * h, 16);
        }
    }
}

/* Blocks [j0, j1) of one row (stored at `stored`, grouped at `grouped`) moved either way: whole
 * groups by move_group, the rest block by block. */
static void move_blocks(size_t bb, size_t ng, size_t j0, size_t j1, uint8_t *stored, uint8_t *grouped, int to_grouped) {
    size_t j = j0;
    for (; j < j1; j++) {
        if (j % 8 == 0 && j + 8 <= j1 && j / 8 < ng) {
            uint8_t *s = stored + j * bb, *g = grouped + j * bb;
            if (bb == 18) move_group(18, s, g, to_grouped);
            else move_group(34, s, g, to_grouped);
            j += 7;
        } else {
            move_block(bb, ng, j, stored, grouped, to_grouped);
        }
    }
}

void luhd_quant_grouped_rows(int format, const void *src, size_t row_bytes, long r0, long r1, long cols, void *dst) {
    if (!luhd_quant_grouped_supports(format, cols) || r0 < 0 || r1 <= r0) return;
    if (super_block_format(format)) {
        const size_t sb = (size_t)luhd_quant_block_bytes(format);
        for (long r = r0; r < r1; r++)
            for (long j = 0; j < cols / 256; j++) {
                const uint8_t *s = (const uint8_t *)src + (size_t)r * row_bytes + sb * (size_t)j;
                uint8_t *g = (uint8_t *)dst + (size_t)r * row_bytes + sb * (size_t)j;
                if (format == LUHD_QF_Q3_K) q3_k_to_grouped(s, g);
                else if (format == LUHD_QF_Q4_K) q4_k_to_grouped(s, g);
                else if (format == LUHD_QF_Q5_K) q5_k_to_grouped(s, g);
                else if (format == LUHD_QF_IQ4_XS) iq4_xs_to_grouped(s, g);
                else q6_k_to_grouped(s, g);
            }
        return;
    }
    const size_t bb = block_bytes(format), nb = (size_t)cols / 32, ng = nb / 8;
    for (long r = r0; r < r1; r++) {
        uint8_t *s = (uint8_t *)src + (size_t)r * row_bytes, *d = (uint8_t *)dst + (size_t)r * row_bytes;
        move_blocks(bb, ng, 0, nb, s, d, 1);
    }
}

void luhd_quant_grouped_rows_restore_columns(int format, const void *grouped, size_t row_bytes, long r0, long r1,
                                             long k0, long k1, long cols, void *dst) {
    if (!luhd_quant_grouped_supports(format, cols) || r0 < 0 || r1 <= r0 || k0 < 0 || k1 <= k0 || k1 > cols || k0 % 32 != 0
        || k1 % 32 != 0)
        return;
    if (super_block_format(format)) {
        if (k0 % 256 != 0 || k1 % 256 != 0) return;
        const size_t sb = (size_t)luhd_quant_block_bytes(format);
        for (long r = r0; r < r1; r++)
            for (long j = k0 / 256; j < k1 / 256; j++) {
                const uint8_t *g = (const uint8_t *)grouped + (size_t)r * row_bytes + sb * (size_t)j;
                uint8_t *s = (uint8_t *)dst + (size_t)(r - r0) * row_bytes + sb * (size_t)j;
                if (format == LUHD_QF_Q3_K) q3_k_to_stored(g, s);
                else if (format == LUHD_QF_Q4_K) q4_k_to_stored(g, s);
                else if (format == LUHD_QF_Q5_K) q5_k_to_stored(g, s);
                else if (format == LUHD_QF_IQ4_XS) iq4_xs_to_stored(g, s);
                else q6_k_to_stored(g, s);
            }
        return;
    }
    const size_t bb = block_bytes(format), ng = (size_t)cols / 256;
    for (long r = r0; r < r1; r++) {
        uint8_t *s = (uint8_t *)grouped + (size_t)r * row_bytes, *d = (uint8_t *)dst + (size_t)(r - r0) * row_bytes;
        move_blocks(bb, ng, (size_t)k0 / 32, (size_t)k1 / 32, d, s, 0);
    }
}
#pragma clang attribute pop
