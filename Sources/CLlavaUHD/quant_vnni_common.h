/* Helpers and prepared-x layouts shared by the int8 VNNI matrix-vector kernels
 * (quant_matvec_vnni.c for the stored layouts, quant_repacked_vnni.c for the row-interleaved
 * ones). Include inside an AVX-512 target region. Not a public header. */
#ifndef CLLAVAUHD_QUANT_VNNI_COMMON_H
#define CLLAVAUHD_QUANT_VNNI_COMMON_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t load16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)load16(p)); }

static inline float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* Bytes per prepared row of x (see luhd_quant_prepare_vnni_* in quant_matvec_vnni.c). */
size_t luhd_quant_vnni_k_row_stride(long cols);
size_t luhd_quant_vnni_q4_row_stride(long cols);
size_t luhd_quant_vnni_q8_row_stride(long cols);

/* Bytes per Q4_0 group of the prepared x: 256 int8 values, 32 f32 dx, 8 f32 offsets. */
#define Q4_0_GROUP_BYTES (256 + 64 + 64 + 32)
#endif
