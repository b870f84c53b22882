/* Prefill attention entry points (include/flash_attention.h). The kernel itself is
 * flash_attention_avx512.h, compiled inside kernels_avx512.c (for its exp and AVX-512 target). */
#include "flash_attention.h"
#include "kernels.h"

void luhd_avx512_flash_attention(int type, const void *keys, const void *values, long stride, long d, long group,
                                 const float *q, long q_stride, long first, long rows, float scale, float *out,
                                 long out_stride, void *work);

int luhd_flash_attention_available(void) { return luhd_kernels_avx512() != NULL; }

size_t luhd_flash_attention_work_bytes(long d, long group) {
    const size_t rows = LUHD_FLASH_QUERY_ROWS, lanes = LUHD_FLASH_LANES, block = LUHD_FLASH_KEY_BLOCK;
    const size_t d8 = (size_t)(d + 7) / 8 * 8, g = (size_t)group;
    /* Per head and row of the tile: query [d] and output [d8] (float), max (float) and sum
     * (double); shared: keys [block][d], values [block][d8], probabilities [block][lanes];
     * 64 bytes of slack for each of the 8 aligned parts. */
    size_t floats = g * ((size_t)d + d8 + 1) * rows + block * ((size_t)d + d8 + lanes);
    return floats * 4 + g * rows * 8 + 8 * 64;
}

void luhd_flash_attention(int type, const void *keys, const void *values, long stride, long d, long group,
                          const float *q, long q_stride, long first, long rows, float scale, float *out,
                          long out_stride, void *work) {
    luhd_avx512_flash_attention(type, keys, values, stride, d, group, q, q_stride, first, rows, scale, out, out_stride,
                                work);
}
