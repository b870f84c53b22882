/* AVX-512 (F, BW, VL, DQ) variants of the vector kernels; chosen at run time (kernels.c). */
#include "kernels.h"
#include <immintrin.h>
#include <stdint.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), \
                             apply_to = function)

#define W 16
#define KFN(name) luhd_avx512_##name
#define ISA_NAME "avx512"
/* Weight rows per matrix-vector block, keeping the accumulators within 32 zmm registers:
 * 8 rows when at most 2 vectors (16 accumulators), else 4 rows (x 4 vectors = 16). */
#define MATVEC_ROWS(m) ((m) <= 2 ? 8 : 4)

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;
typedef __m512d vd;

static inline vmask tail_mask(long n) { return (vmask)((1u << n) - 1u); }
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_set(float a) { return _mm512_set1_ps(a); }
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vf v_load_n(const float *p, long n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
static inline vf v_load_n_fill(const float *p, long n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p);
}
static inline void v_store(float *p, vf x) { _mm512_storeu_ps(p, x); }
static inline void v_store_n(float *p, vf x, long n) { _mm512_mask_storeu_ps(p, tail_mask(n), x); }

static inline vf from_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
static inline vf v_load_bf16(const uint16_t *p) { return from_bf16(_mm256_loadu_si256((const __m256i *)p)); }
static inline vf v_load_bf16_n(const uint16_t *p, long n) { return from_bf16(_mm256_maskz_loadu_epi16(tail_mask(n), p)); }
static inline vf v_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline vf v_load_f16_n(const uint16_t *p, long n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p)); }

/* F32 bits -> BF16 bits in the low half of each lane: round to nearest even; NaN -> quiet NaN. */
static inline vi bf16_bits(vf x) {
    vi b = _mm512_castps_si512(x);
    vi lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    vi rounded = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    vi quiet = _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), rounded, quiet);
}
static inline void v_store_bf16(uint16_t *p, vf x) { _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(bf16_bits(x))); }
static inline void v_store_bf16_n(uint16_t *p, vf x, long n) {
    _mm256_mask_storeu_epi16(p, tail_mask(n), _mm512_cvtepi32_epi16(bf16_bits(x)));
}
static inline vf v_round_bf16(vf x) { return _mm512_castsi512_ps(_mm512_slli_epi32(bf16_bits(x), 16)); }
#define F16_ROUNDING (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline void v_store_f16(uint16_t *p, vf x) { _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(x, F16_ROUNDING)); }
static inline void v_store_f16_n(uint16_t *p, vf x, long n) {
    _mm256_mask_storeu_epi16(p, tail_mask(n), _mm512_cvtps_ph(x, F16_ROUNDING));
}
static inline vf v_round_f16(vf x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, F16_ROUNDING)); }

static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
/* min/max return their second operand when either is NaN: pass the bound first. */
static inline vf v_min(vf bound, vf x) { return _mm512_min_ps(bound, x); }
static inline vf v_max(vf bound, vf x) { return _mm512_max_ps(bound, x); }
static inline vf v_abs(vf x) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF))); }
static inline vf v_neg(vf x) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))); }
static inline vf v_copysign(vf mag, vf sign) {
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(0x7FFFFFFF), _mm512_castps_si512(mag),
                                                         _mm512_castps_si512(sign), 0xCA));
}
static inline vf v_round(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vmask v_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vf v_blend(vmask m, vf a, vf b) { return _mm512_mask_blend_ps(m, a, b); }
static inline float v_hsum(vf x) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
/* out[k] = v_hsum(x_k) * scale for the 4 vectors, bit for bit (the same additions in the same
 * tree: lanes i + i+8, then i + i+4, i + i+2, i + i+1), done on all four at once. */
static inline void v_hsum4_scaled(vf x0, vf x1, vf x2, vf x3, float scale, float *out) {
    vf s01 = _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, 0x44), _mm512_shuffle_f32x4(x0, x1, 0xEE));
    vf s23 = _mm512_add_ps(_mm512_shuffle_f32x4(x2, x3, 0x44), _mm512_shuffle_f32x4(x2, x3, 0xEE));
    /* 128-bit lane k: vector k's lanes i + i+8, then + i+4. */
    vf s4 = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88), _mm512_shuffle_f32x4(s01, s23, 0xDD));
    vf s2 = _mm512_add_ps(s4, _mm512_shuffle_ps(s4, s4, 0xEE));
    vf s1 = _mm512_add_ps(s2, _mm512_movehdup_ps(s2));
    __m128 sums = _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), s1));
    _mm_storeu_ps(out, _mm_mul_ps(sums, _mm_set1_ps(scale)));
}
static inline float v_hmax(vf x) {
    __m256 s8 = _mm256_max_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_max_ss(s2, _mm_movehdup_ps(s2)));
}
static inline vf v_lookup8(const float *table, vi idx) {
    return _mm512_permutexvar_ps(_mm512_and_si512(idx, _mm512_set1_epi32(7)), _mm512_castps256_ps512(_mm256_loadu_ps(table)));
}
static inline vi v_cvtt_i(vf x) { return _mm512_cvttps_epi32(x); }
static inline vi v_i_min7(vi x) { return _mm512_min_epi32(x, _mm512_set1_epi32(7)); }
/* vscalefps: x * 2^floor(n) rounded once, as the two exact-then-rounded steps of kernels_avx2.c
 * (bit-identical results; one instruction in place of nine). */
static inline vf v_scale_pow2(vf x, vf n) { return _mm512_scalef_ps(x, n); }

static inline vd vd_zero(void) { return _mm512_setzero_pd(); }
static inline void vd_add_halves(vd *s0, vd *s1, vf x) {
    *s0 = _mm512_add_pd(*s0, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    *s1 = _mm512_add_pd(*s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)));
}
static inline void vd_add_sq_dev_halves(vd *s0, vd *s1, vf x, double mean) {
    vd m = _mm512_set1_pd(mean);
    vd d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), m);
    vd d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), m);
    *s0 = _mm512_fmadd_pd(d0, d0, *s0);
    *s1 = _mm512_fmadd_pd(d1, d1, *s1);
}
static inline double vd_hsum(vd s0, vd s1) {
    vd s = _mm512_add_pd(s0, s1);
    __m256d s4 = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

#include "kernels_simd.h"
#include "flash_attention_avx512.h"

#pragma clang attribute pop
