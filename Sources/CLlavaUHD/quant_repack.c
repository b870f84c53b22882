/* Row-interleaved ("repacked") copies of Q8_0, Q4_0 and Q4_K matrices for the int8 VNNI
 * matrix-vector kernels of quant_repacked_vnni.c (declared in quant_kernels.h).
 *
 * A matrix of R rows (R a multiple of 4) and K columns (a multiple of 256) is cut into groups of
 * 256 weights along each row (8 blocks of 32, or one K super-block; G bytes: Q8_0 272, Q4_0 and
 * Q4_K 144). Rows 4q..4q+3 form row block q, which starts at q * 4 * row_bytes (the copy has
 * exactly the original size); in it, group g of the 4 rows takes the 4G bytes at g * 4G, so a
 * kernel working on 4 rows reads one stream and the same prepared x for all four. Each row's
 * group is reordered so that whole 64-byte loads feed vpdpbusd, and split into a 16-byte header
 * and a body:
 *   Q8_0: header the 8 f16 scales, body the 8 blocks' 256 int8 quants in order.
 *   Q4_0: header the 8 f16 scales, body 64 bytes with the 16 nibble bytes of blocks 0-3 (block c
 *         at 16c), then the same for blocks 4-7.
 *   Q4_K: header d, dmin and the 12 scale bytes as stored, body two chunks of 64 bytes: byte j of
 *         chunk h holds element 128h + j in its low nibble and 128h + 64 + j in its high one.
 * Q8_0 and Q4_0 keep row j's header and body together at j * G in the 4G bytes; Q4_K puts the 4
 * headers first (row j's at 16j, so one 64-byte load brings the scales of all 4 rows), then the
 * bodies (row j's at 64 + 128j).
 * Every value keeps its bits: only positions change, so luhd_quant_repack_rows_restore gives the
 * original bytes back. */
#include "quant_kernels.h"
#include <string.h>

int luhd_quant_repack_supports(int format, long rows, long cols) {
    if (rows <= 0 || rows % 4 != 0 || cols <= 0 || cols % 256 != 0) return 0;
    return format == LUHD_QF_Q8_0 || format == LUHD_QF_Q4_0 || format == LUHD_QF_Q4_K;
}

/* Bytes of one group of 256 weights. */
static size_t group_bytes(int format) { return format == LUHD_QF_Q8_0 ? 272 : 144; }

/* One group of 256 weights from the stored layout to the repacked one (to_repacked = 1), or
 * back (0). */
static void convert_group(int format, const uint8_t *src, uint8_t *dst, int to_repacked) {
    switch (format) {
    case LUHD_QF_Q8_0:
        for (int j = 0; j < 8; j++) {
            if (to_repacked) {
                memcpy(dst + 2 * j, src + 34 * j, 2);
                memcpy(dst + 16 + 32 * j, src + 34 * j + 2, 32);
            } else {
                memcpy(dst + 34 * j, src + 2 * j, 2);
                memcpy(dst + 34 * j + 2, src + 16 + 32 * j, 32);
            }
        }
        break;
    case LUHD_QF_Q4_0:
        for (int j = 0; j < 8; j++) {
            const size_t at = 16 + 64 * (size_t)(j / 4) + 16 * (size_t)(j % 4);
            if (to_repacked) {
                memcpy(dst + 2 * j, src + 18 * j, 2);
                memcpy(dst + at, src + 18 * j + 2, 16);
            } else {
                memcpy(dst + 18 * j, src + 2 * j, 2);
                memcpy(dst + 18 * j + 2, src + at, 16);
            }
        }
        break;
    default: /* Q4_K */
        /* In each 64-byte half h, with A = bytes 0-31 and B = bytes 32-63 of its nibbles: stored,
         * A holds elements 64h + 0..31 (low nibbles) and 64h + 32..63 (high), B the next 64;
         * repacked, A holds elements 0..31 and 64..95 of the half, B 32..63 and 96..127. Both
         * ways: A' = lo(A) | lo(B) << 4, B' = hi(A) | hi(B) << 4 (the map is its own inverse). */
        memcpy(dst, src, 16);
        for (int h = 0; h < 2; h++) {
            const uint8_t *a = src + 16 + 64 * h, *b = a + 32;
            uint8_t *ra = dst + 16 + 64 * h, *rb = ra + 32;
            for (int j = 0; j < 32; j++) {
                ra[j] = (uint8_t)((a[j] & 0x0F) | (b[j] & 0x0F) << 4);
                rb[j] = (uint8_t)((a[j] >> 4) | (b[j] & 0xF0));
            }
        }
        break;
    }
}

/* Where row r % 4 == j of a row block puts the two parts of its group (header: the group's
 * first `head` bytes; body: the rest), relative to the group of 4 rows: Q4_K keeps the 4
 * headers together (so one 64-byte load holds the scales of all 4 rows), the others keep each
 * row's group in one piece. */
static void part_offsets(int format, int j, size_t *head_at, size_t *body_at) {
    const size_t gb = group_bytes(format);
    if (format == LUHD_QF_Q4_K) {
        *head_at = 16 * (size_t)j;
        *body_at = 64 + 128 * (size_t)j;
    } else {
        *head_at = gb * (size_t)j;
        *body_at = gb * (size_t)j + 16;
    }
}

void luhd_quant_repack_rows(int format, const void *src, size_t row_bytes, long r0, long r1, long cols, void *dst) {
    const size_t gb = group_bytes(format), ng = (size_t)cols / 256;
    uint8_t g1[272];
    for (long r = r0; r < r1; r++) {
        const uint8_t *s = (const uint8_t *)src + (size_t)r * row_bytes;
        uint8_t *d = (uint8_t *)dst + (size_t)(r / 4) * 4 * row_bytes;
        size_t head, body;
        part_offsets(format, (int)(r % 4), &head, &body);
        for (size_t g = 0; g < ng; g++) {
            convert_group(format, s + g * gb, g1, 1);
            memcpy(d + g * 4 * gb + head, g1, 16);
            memcpy(d + g * 4 * gb + body, g1 + 16, gb - 16);
        }
    }
}

void luhd_quant_repack_rows_restore(int format, const void *repacked, size_t row_bytes, long r0, long r1, long cols,
                                    void *dst) {
    const size_t gb = group_bytes(format), ng = (size_t)cols / 256;
    uint8_t g1[272];
    for (long r = r0; r < r1; r++) {
        const uint8_t *s = (const uint8_t *)repacked + (size_t)(r / 4) * 4 * row_bytes;
        uint8_t *d = (uint8_t *)dst + (size_t)(r - r0) * row_bytes;
        size_t head, body;
        part_offsets(format, (int)(r % 4), &head, &body);
        for (size_t g = 0; g < ng; g++) {
            memcpy(g1, s + g * 4 * gb + head, 16);
            memcpy(g1 + 16, s + g * 4 * gb + body, gb - 16);
            convert_group(format, g1, d + g * gb, 0);
        }
    }
}
