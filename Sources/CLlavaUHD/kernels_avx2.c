/* AVX2 + FMA + F16C variants of the vector kernels (the library's baseline, x86-64-v3). */
#include "kernels.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define W 8
#define KFN(name) luhd_avx2_##name
#define ISA_NAME "avx2"
/* Weight rows per matrix-vector block, keeping the accumulators within 16 ymm registers:
 * 8 rows for one vector, 4 for two, else 2 rows (x 4 vectors = 8 accumulators). */
#define MATVEC_ROWS(m) ((m) == 1 ? 8 : (m) == 2 ? 4 : 2)

typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vmask;
typedef __m256d vd;

static inline __m256i tail_mask(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_set(float a) { return _mm256_set1_ps(a); }
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vf v_load_n(const float *p, long n) { return _mm256_maskload_ps(p, tail_mask(n)); }
static inline vf v_load_n_fill(const float *p, long n, float fill) {
    __m256i m = tail_mask(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void v_store(float *p, vf x) { _mm256_storeu_ps(p, x); }
static inline void v_store_n(float *p, vf x, long n) { _mm256_maskstore_ps(p, tail_mask(n), x); }

/* 16-bit tails go through a zeroed buffer (AVX2 has no 16-bit masked loads). */
static inline __m128i load_u16_n(const uint16_t *p, long n) {
    uint16_t b[8] = {0};
    memcpy(b, p, (size_t)n * 2);
    return _mm_loadu_si128((const __m128i *)b);
}
static inline void store_u16_n(uint16_t *p, __m128i v, long n) {
    uint16_t b[8];
    _mm_storeu_si128((__m128i *)b, v);
    memcpy(p, b, (size_t)n * 2);
}
static inline vf from_bf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
static inline vf v_load_bf16(const uint16_t *p) { return from_bf16(_mm_loadu_si128((const __m128i *)p)); }
static inline vf v_load_bf16_n(const uint16_t *p, long n) { return from_bf16(load_u16_n(p, n)); }
static inline vf v_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline vf v_load_f16_n(const uint16_t *p, long n) { return _mm256_cvtph_ps(load_u16_n(p, n)); }

/* F32 bits -> BF16 bits in the low half of each lane: round to nearest even; NaN -> quiet NaN. */
static inline vi bf16_bits(vf x) {
    vi b = _mm256_castps_si256(x);
    vi lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    vi rounded = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    vi quiet = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet),
                                                _mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
}
static inline __m128i pack_u16(vi x) {   /* 8 lanes of 0..65535 -> 8 uint16 */
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(x, x), 0x08));
}
static inline void v_store_bf16(uint16_t *p, vf x) { _mm_storeu_si128((__m128i *)p, pack_u16(bf16_bits(x))); }
static inline void v_store_bf16_n(uint16_t *p, vf x, long n) { store_u16_n(p, pack_u16(bf16_bits(x)), n); }
static inline vf v_round_bf16(vf x) { return _mm256_castsi256_ps(_mm256_slli_epi32(bf16_bits(x), 16)); }
#define F16_ROUNDING (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline void v_store_f16(uint16_t *p, vf x) { _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(x, F16_ROUNDING)); }
static inline void v_store_f16_n(uint16_t *p, vf x, long n) { store_u16_n(p, _mm256_cvtps_ph(x, F16_ROUNDING), n); }
static inline vf v_round_f16(vf x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, F16_ROUNDING)); }

static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
/* min/max return their second operand when either is NaN: pass the bound first. */
static inline vf v_min(vf bound, vf x) { return _mm256_min_ps(bound, x); }
static inline vf v_max(vf bound, vf x) { return _mm256_max_ps(bound, x); }
static inline vf v_abs(vf x) { return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF))); }
static inline vf v_neg(vf x) { return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)); }
static inline vf v_copysign(vf mag, vf sign) {
    return _mm256_or_ps(v_abs(mag), _mm256_and_ps(sign, _mm256_set1_ps(-0.0f)));
}
static inline vf v_round(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vmask v_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vf v_blend(vmask m, vf a, vf b) { return _mm256_blendv_ps(a, b, m); }
static inline float v_hsum(vf x) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
/* out[k] = v_hsum(x_k) * scale for the 4 vectors. */
static inline void v_hsum4_scaled(vf x0, vf x1, vf x2, vf x3, float scale, float *out) {
    out[0] = v_hsum(x0) * scale;
    out[1] = v_hsum(x1) * scale;
    out[2] = v_hsum(x2) * scale;
    out[3] = v_hsum(x3) * scale;
}
static inline float v_hmax(vf x) {
    __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_max_ss(s2, _mm_movehdup_ps(s2)));
}
static inline vf v_lookup8(const float *table, vi idx) { return _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), idx); }
static inline vi v_cvtt_i(vf x) { return _mm256_cvttps_epi32(x); }
static inline vi v_i_min7(vi x) { return _mm256_min_epi32(x, _mm256_set1_epi32(7)); }
static inline vf v_pow2i(vi n) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23)); }
/* x * 2^n as two powers of two, 2^floor(n/2) (exact: x * 2^(n/2) stays normal for the n that
 * exp makes) and then 2^(n - floor(n/2)) (the one rounding), so that results that overflow or
 * are subnormal come out right. */
static inline vf v_scale_pow2(vf x, vf n) {
    const vi ni = _mm256_cvtps_epi32(n);
    const vi n1 = _mm256_srai_epi32(ni, 1);
    return _mm256_mul_ps(_mm256_mul_ps(x, v_pow2i(n1)), v_pow2i(_mm256_sub_epi32(ni, n1)));
}

static inline vd vd_zero(void) { return _mm256_setzero_pd(); }
static inline void vd_add_halves(vd *s0, vd *s1, vf x) {
    *s0 = _mm256_add_pd(*s0, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    *s1 = _mm256_add_pd(*s1, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
}
static inline void vd_add_sq_dev_halves(vd *s0, vd *s1, vf x, double mean) {
    vd m = _mm256_set1_pd(mean);
    vd d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), m);
    vd d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), m);
    *s0 = _mm256_fmadd_pd(d0, d0, *s0);
    *s1 = _mm256_fmadd_pd(d1, d1, *s1);
}
static inline double vd_hsum(vd s0, vd s1) {
    vd s = _mm256_add_pd(s0, s1);
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

#include "kernels_simd.h"
#include "full_attention_avx2.h"
