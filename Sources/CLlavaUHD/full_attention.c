/* Unmasked attention entry points (include/full_attention.h). The kernel itself is
 * full_attention_avx2.h, compiled inside kernels_avx2.c (for its softmax and exp). */
#include "full_attention.h"
#include "kernels.h"

void luhd_avx2_full_attention(const float *q, const float *k, const float *v, long stride, long n, long d,
                              float scale, float *out, long out_stride, void *work);

int luhd_full_attention_available(void) {
    return luhd_kernels_avx512() == NULL && luhd_kernels_avx2() != NULL;
}

size_t luhd_full_attention_work_bytes(long n, long d) {
    const size_t n16 = (size_t)(n + 15) / 16 * 16, d8 = (size_t)(d + 7) / 8 * 8;
    return (n16 * d8 + (size_t)n * d8 + LUHD_FULL_ATTENTION_ROWS * n16) * sizeof(float) + 3 * 64;
}

void luhd_full_attention(const float *q, const float *k, const float *v, long stride, long n, long d, float scale,
                         float *out, long out_stride, void *work) {
    luhd_avx2_full_attention(q, k, v, stride, n, d, scale, out, out_stride, work);
}
