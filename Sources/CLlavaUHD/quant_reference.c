/* Reference (de)quantization of GGML block formats and CPU feature checks; see quant_kernels.h.
 * Written from the format definitions (block layouts and formulas), rounding every operation
 * to f32 in the stated order: no contraction into fused multiply-adds. */
#include "quant_kernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

int luhd_quant_block_elements(int format) {
    switch (format) {
    case LUHD_QF_F32: case LUHD_QF_F16: case LUHD_QF_BF16: return 1;
    case LUHD_QF_Q8_0: case LUHD_QF_Q4_0: case LUHD_QF_Q5_0: return 32;
    case LUHD_QF_Q4_K: case LUHD_QF_Q6_K: return 256;
    default: return 0;
    }
}

int luhd_quant_block_bytes(int format) {
    switch (format) {
    case LUHD_QF_F32: return 4;
    case LUHD_QF_F16: case LUHD_QF_BF16: return 2;
    case LUHD_QF_Q8_0: return 34;
    case LUHD_QF_Q4_0: return 18;
    case LUHD_QF_Q5_0: return 22;
    case LUHD_QF_Q4_K: return 144;
    case LUHD_QF_Q6_K: return 210;
    default: return 0;
    }
}

int luhd_quant_kernel_available(int kernel) {
    /* F16C is part of the x86-64-v3 baseline the whole library is compiled for. */
    __builtin_cpu_init();
    switch (kernel) {
    case LUHD_QK_F32_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LUHD_QK_F32_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    case LUHD_QK_INT8_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni");
    default: return 0;
    }
}

static inline float half_to_float(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline uint16_t float_to_half(float f) {
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K super-block. Scales 0..3 and mins 0..3
 * are the low 6 bits of bytes 0..3 and 4..7; scales/mins 4..7 take their low 4 bits from the
 * low/high nibble of bytes 8..11 and their top 2 bits from the top bits of bytes 0..3 / 4..7. */
static inline void q4k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void dequant_q8_0(const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, b += 34, y += 32) {
        const float d = half_to_float(b);
        const int8_t *q = (const int8_t *)(b + 2);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d;
    }
}

static void dequant_q4_0(const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, b += 18, y += 32) {
        const float d = half_to_float(b);
        const uint8_t *q = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((q[j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((q[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q5_0(const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, b += 22, y += 32) {
        const float d = half_to_float(b);
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        const uint8_t *q = b + 6;
        for (int j = 0; j < 16; j++) {
            const int lo = (q[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int hi = (q[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(lo - 16) * d;
            y[j + 16] = (float)(hi - 16) * d;
        }
    }
}

static void dequant_q4_k(const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, b += 144) {
        const float d = half_to_float(b), dmin = half_to_float(b + 2);
        const uint8_t *s = b + 4, *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc, m;
            q4k_scale_min(s, 2 * c, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            q4k_scale_min(s, 2 * c + 1, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                const float p1 = d1 * (float)(q[l] & 0x0F);
                const float p2 = d2 * (float)(q[l] >> 4);
                y[l] = p1 - m1;
                y[l + 32] = p2 - m2;
            }
            y += 64;
        }
    }
}

static void dequant_q6_k(const uint8_t *b, long nb, float *y) {
    for (long i = 0; i < nb; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = half_to_float(b + 208);
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = (d * (float)sc[is]) * (float)q1;
                y[l + 32] = (d * (float)sc[is + 2]) * (float)q2;
                y[l + 64] = (d * (float)sc[is + 4]) * (float)q3;
                y[l + 96] = (d * (float)sc[is + 6]) * (float)q4;
            }
        }
    }
}

void luhd_quant_dequantize(int format, const void *src, long n, float *dst) {
    const uint8_t *b = (const uint8_t *)src;
    switch (format) {
    case LUHD_QF_F32: memcpy(dst, src, (size_t)n * 4); break;
    case LUHD_QF_F16: for (long i = 0; i < n; i++) dst[i] = half_to_float(b + 2 * i); break;
    case LUHD_QF_BF16:
        for (long i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            uint32_t w = (uint32_t)h << 16;
            memcpy(dst + i, &w, 4);
        }
        break;
    case LUHD_QF_Q8_0: dequant_q8_0(b, n / 32, dst); break;
    case LUHD_QF_Q4_0: dequant_q4_0(b, n / 32, dst); break;
    case LUHD_QF_Q5_0: dequant_q5_0(b, n / 32, dst); break;
    case LUHD_QF_Q4_K: dequant_q4_k(b, n / 256, dst); break;
    case LUHD_QF_Q6_K: dequant_q6_k(b, n / 256, dst); break;
    default: break;
    }
}

void luhd_quant_quantize_q8_0(const float *x, long n, void *dst) {
    uint8_t *b = (uint8_t *)dst;
    for (long i = 0; i < n / 32; i++, x += 32, b += 34) {
        float amax = 0.0f;
        int finite = 1;
        for (int j = 0; j < 32; j++) {
            if (!isfinite(x[j])) finite = 0;
            amax = fmaxf(amax, fabsf(x[j]));
        }
        const float d = finite ? amax / 127.0f : 0.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = float_to_half(d);
        memcpy(b, &h, 2);
        for (int j = 0; j < 32; j++) {
            float v = roundf(x[j] * id);
            if (!(v >= -127.0f)) v = finite ? -127.0f : 0.0f;   /* also maps NaN to 0 */
            if (v > 127.0f) v = 127.0f;
            b[2 + j] = (uint8_t)(int8_t)v;
        }
    }
}

void luhd_quant_quantize_q4_0(const float *x, long n, void *dst) {
    uint8_t *b = (uint8_t *)dst;
    for (long i = 0; i < n / 32; i++, x += 32, b += 18) {
        float amax = 0.0f, max = 0.0f;
        int finite = 1;
        for (int j = 0; j < 32; j++) {
            if (!isfinite(x[j])) finite = 0;
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = finite ? max / -8.0f : 0.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = float_to_half(d);
        memcpy(b, &h, 2);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const float s = x[j] * id;      /* rounded on its own, then offset: no fused multiply-add */
            float v = s + 8.5f;
            if (!(v >= 0.0f)) v = 0.0f;
            if (v > 15.0f) v = 15.0f;
            q[j] = (uint8_t)(int)v;         /* truncation toward zero, as the reference does */
        }
        for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(q[j] | (q[j + 16] << 4));
    }
}
