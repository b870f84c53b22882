/* Scalar helpers for the block layouts of quant_kernels.h, shared by the reference
 * dequantization and the integer kernels. Not a public header. */
#ifndef CLLAVAUHD_QUANT_BLOCKS_H
#define CLLAVAUHD_QUANT_BLOCKS_H
#include <stdint.h>
#include <string.h>

/* IQ4_NL / IQ4_XS: the value of each 4-bit index (GGML's kvalues_iq4nl). */
extern const int8_t luhd_iq4_values[16];

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K or Q5_K super-block (the 12 bytes at
 * s). Scales 0..3 and mins 0..3 are the low 6 bits of bytes 0..3 and 4..7; scales/mins 4..7
 * take their low 4 bits from the low/high nibble of bytes 8..11 and their top 2 bits from the
 * top bits of bytes 0..3 / 4..7. */
static inline void luhd_q4k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* The signed scale (6 bits minus 32) of sub-block j (0..15) of a Q3_K super-block (the 12
 * bytes at s): low 4 bits from byte j % 8 (its high nibble for j >= 8), high 2 bits from byte
 * 8 + j % 4 at bit 2 (j / 4). */
static inline int luhd_q3k_scale(const uint8_t *s, int j) {
    const int lo = (s[j % 8] >> (4 * (j / 8))) & 0x0F;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* The signed scale (6 bits minus 32) of sub-block j (0..7) of an IQ4_XS super-block b: low 4
 * bits from nibble j % 2 of byte 4 + j / 2, high 2 bits from bits 2j of the u16 at byte 2. */
static inline int luhd_iq4xs_scale(const uint8_t *b, int j) {
    uint16_t h;
    memcpy(&h, b + 2, 2);
    const int lo = (b[4 + j / 2] >> (4 * (j % 2))) & 0x0F;
    return (lo | ((h >> (2 * j)) & 3) << 4) - 32;
}
#endif
