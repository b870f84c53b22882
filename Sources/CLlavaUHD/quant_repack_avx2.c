/* Scale-grouped copies of Q4_0 and Q8_0 matrices for the int8 AVX2 matrix-vector kernels
 * (luhd_quant_matvec_grouped in quant_matvec_int8_avx2.c; declared in
 * quant_kernels.h).
 *
 * The stored layout puts each block's f16 scale d ahead of its quants, so the 8 scales of a
 * group of 8 blocks lie 18 (Q4_0) or 34 (Q8_0) bytes apart: the kernels gathered them one
 * 16-bit load at a time, about a third of Q4_0's instructions per group (BENCHMARKS.md
 * notes:decode10), and loaded each block's quants as 16-byte halves of a 256-bit register. The
 * grouped copy keeps every row where it was (row r at r * row_bytes, the same size) and reorders
 * the bytes inside each group of 8 blocks of a row (G = 8 * block bytes: Q4_0 144, Q8_0 272):
 *   bytes 0..15    the 8 f16 scales d of blocks 0..7, in block order (one 128-bit load);
 *   then, for pair k = 0..3 (blocks k and k + 4, the pair order of the prepared x), for each
 *   16-byte half h of a block's quants (Q4_0: one, its 16 nibble bytes; Q8_0: two, quants
 *   0..15 and 16..31), half h of block k then half h of block k + 4: pair k's 32 * H bytes
 *   at 16 + 32 H k (H halves), each half-pair one 256-bit load.
 * The blocks after the last whole group of a row (rows whose block count is not a multiple of
 * 8) keep the stored layout. Every byte keeps its value, only its position changes, so
 * luhd_quant_grouped_rows_restore_columns gives the stored bytes back (for the int8 AVX2
 * matrix product of prefill, which reads the stored layout). */
#include "quant_kernels.h"
#include <string.h>

int luhd_quant_grouped_supports(int format, long cols) {
    if (cols < 256 || cols % 32 != 0) return 0;
    return format == LUHD_QF_Q4_0 || format == LUHD_QF_Q8_0;
}

/* Bytes of one block of a supported format. */
static size_t block_bytes(int format) { return format == LUHD_QF_Q8_0 ? 34 : 18; }

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
    const size_t bb = block_bytes(format), ng = (size_t)cols / 256;
    for (long r = r0; r < r1; r++) {
        uint8_t *s = (uint8_t *)grouped + (size_t)r * row_bytes, *d = (uint8_t *)dst + (size_t)(r - r0) * row_bytes;
        move_blocks(bb, ng, (size_t)k0 / 32, (size_t)k1 / 32, d, s, 0);
    }
}
