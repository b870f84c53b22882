/* Helpers shared by the AVX2 int8 prefill products (quant_gemm_avx2.c per block of 32,
 * quant_gemm_k_avx2.c per super-block of 256): the quantization of x and the transposition of
 * 8 weight rows into the lane layout of their tiles. Include inside an "avx2,fma,f16c" target
 * region. Not a public header. */
#ifndef CLLAVAUHD_QUANT_GEMM_AVX2_COMMON_H
#define CLLAVAUHD_QUANT_GEMM_AVX2_COMMON_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static inline float gemm_avx2_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The largest of the 8 lanes (finite magnitudes: any order gives the same value). */
static inline float gemm_avx2_hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* The sum of the 8 int32 lanes. */
static inline int gemm_avx2_hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* 32 values v (4 vectors of 8 consecutive floats) quantized with the inverse scale id: q[j] =
 * round(v * id) to nearest even (vroundps), clamped to +-127, as int32 lanes; returns the 32
 * int8 values in order (the packs work within 128-bit lanes, the permute puts the 4-byte
 * groups back in order). */
static inline __m256i gemm_avx2_quantize32(const __m256 v[4], __m256 id, __m256i q[4]) {
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    for (int j = 0; j < 4; j++) {
        const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[j], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[j] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
    }
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
    return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 8 rows of 32 bytes (r[n]: row n) to 8 vectors of 4-byte groups: c[g], lane n = bytes 4g..4g+3
 * of row n (the operand layout of the tiles: one vector multiplies 4 consecutive weights of 8
 * rows by 4 bytes of x broadcast). */
static inline void gemm_avx2_transpose8(const __m256i r[8], __m256i c[8]) {
    __m256i t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 2; k++) {
        u[4 * k] = _mm256_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm256_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm256_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm256_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    for (int g = 0; g < 4; g++) {
        c[g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x20);
        c[g + 4] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x31);
    }
}
#endif
