/* The f32 matrix-vector kernels compiled for AVX-512 (512-bit registers); chosen at run time. */
#include "quant_kernels.h"
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma"))), apply_to = function)
#define KFN(name) luhd_qavx512_##name
#include "quant_matvec_f32_body.h"

void luhd_quant_matvec_f32_avx512(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                  const float *x, long ldx, int m, float *y, long ldy) {
    KFN(matvec)(format, (const uint8_t *)w, rb, r0, r1, cols, x, ldx, m, y, ldy);
}
#pragma clang attribute pop
