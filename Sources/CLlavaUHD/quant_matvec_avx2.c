/* The f32 matrix-vector kernels for the x86-64-v3 baseline (AVX2, FMA, F16C). */
#include "quant_kernels.h"
/* The helpers pass 16-float vectors by value; they are static and always inlined, so the
 * ABI note about 512-bit vectors without AVX-512 does not apply. */
#pragma clang diagnostic ignored "-Wpsabi"
#define KFN(name) luhd_qavx2_##name
#include "quant_matvec_f32_body.h"

void luhd_quant_matvec_f32_avx2(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                const float *x, long ldx, int m, float *y, long ldy) {
    KFN(matvec)(format, (const uint8_t *)w, rb, r0, r1, cols, x, ldx, m, y, ldy);
}
