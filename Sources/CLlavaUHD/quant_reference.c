/* Reference (de)quantization of GGML block formats and CPU feature checks; see quant_kernels.h.
 * Written from the format definitions (block layouts and formulas), rounding every operation
 * to f32 in the stated order: no contraction into fused multiply-adds. */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

int luhd_quant_block_elements(int format) {
    switch (format) {
    case LUHD_QF_F32: case LUHD_QF_F16: case LUHD_QF_BF16: return 1;
    case LUHD_QF_Q8_0: case LUHD_QF_Q4_0: case LUHD_QF_Q4_1: case LUHD_QF_Q5_0: case LUHD_QF_Q5_1:
    case LUHD_QF_IQ4_NL: return 32;
    case LUHD_QF_Q2_K: case LUHD_QF_Q3_K: case LUHD_QF_Q4_K: case LUHD_QF_Q5_K: case LUHD_QF_Q6_K:
    case LUHD_QF_IQ4_XS: return 256;
    default: return 0;
    }
}

int luhd_quant_block_bytes(int format) {
    switch (format) {
    case LUHD_QF_F32: return 4;
    case LUHD_QF_F16: case LUHD_QF_BF16: return 2;
    case LUHD_QF_Q8_0: return 34;
    case LUHD_QF_Q4_0: case LUHD_QF_IQ4_NL: return 18;
    case LUHD_QF_Q4_1: return 20;
    case LUHD_QF_Q5_0: return 22;
    case LUHD_QF_Q5_1: return 24;
    case LUHD_QF_Q2_K: return 84;
    case LUHD_QF_Q3_K: return 110;
    case LUHD_QF_Q4_K: return 144;
    case LUHD_QF_Q5_K: return 176;
    case LUHD_QF_Q6_K: return 210;
    case LUHD_QF_IQ4_XS: return 136;
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
    case LUHD_QK_INT8_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
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

const int8_t luhd_iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

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
            luhd_q4k_scale_min(s, 2 * c, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            luhd_q4k_scale_min(s, 2 * c + 1, &sc, &m);
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

static void dequant_q4_1(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 20, y += 32) {
        const float d = half_to_float(b), m = half_to_float(b + 2);
        const uint8_t *q = b + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)(q[j] & 0x0F) + m;
            y[j + 16] = d * (float)(q[j] >> 4) + m;
        }
    }
}

static void dequant_q5_1(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 24, y += 32) {
        const float d = half_to_float(b), m = half_to_float(b + 2);
        uint32_t qh;
        memcpy(&qh, b + 4, 4);
        const uint8_t *q = b + 8;
        for (int j = 0; j < 16; j++) {
            const int lo = (q[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int hi = (q[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = d * (float)lo + m;
            y[j + 16] = d * (float)hi + m;
        }
    }
}

static void dequant_iq4_nl(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 18, y += 32) {
        const float d = half_to_float(b);
        const uint8_t *q = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)luhd_iq4_values[q[j] & 0x0F];
            y[j + 16] = d * (float)luhd_iq4_values[q[j] >> 4];
        }
    }
}

/* Q2_K and Q3_K: element 128h + 32s + l is bits 2s of byte 32h + l of the low parts (Q3_K: minus
 * 4 unless bit 4h + s of hmask byte l is set); sub-block j = 8h + 2s + l / 16. */
static void dequant_q2_k(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 84) {
        const uint8_t *sc = b, *qs = b + 16;
        const float d = half_to_float(b + 80), dmin = half_to_float(b + 82);
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 4; s++) {
                for (int half = 0; half < 2; half++, y += 16) {
                    const int j = 8 * h + 2 * s + half;
                    const float dl = d * (float)(sc[j] & 0x0F), ml = dmin * (float)(sc[j] >> 4);
                    const uint8_t *q = qs + 32 * h + 16 * half;
                    for (int l = 0; l < 16; l++) y[l] = dl * (float)((q[l] >> (2 * s)) & 3) - ml;
                }
            }
        }
    }
}

static void dequant_q3_k(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 110) {
        const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
        const float d = half_to_float(b + 108);
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 4; s++) {
                for (int half = 0; half < 2; half++, y += 16) {
                    const float dl = d * (float)luhd_q3k_scale(sc, 8 * h + 2 * s + half);
                    const uint8_t *q = qs + 32 * h + 16 * half, *m = hm + 16 * half;
                    for (int l = 0; l < 16; l++) {
                        const int v = ((q[l] >> (2 * s)) & 3) - (((m[l] >> (4 * h + s)) & 1) ? 0 : 4);
                        y[l] = dl * (float)v;
                    }
                }
            }
        }
    }
}

/* Q5_K: sub-block j is nibble j % 2 of bytes 32 (j / 2) + l of the 128 nibble bytes, with bit j
 * of qh byte l above it. */
static void dequant_q5_k(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 176) {
        const float d = half_to_float(b), dmin = half_to_float(b + 2);
        const uint8_t *s = b + 4, *qh = b + 16, *qs = b + 48;
        for (int j = 0; j < 8; j++, y += 32) {
            int sc, m;
            luhd_q4k_scale_min(s, j, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) {
                const int v = ((q[l] >> (4 * (j % 2))) & 0x0F) | ((qh[l] >> j) & 1) << 4;
                y[l] = dl * (float)v - ml;
            }
        }
    }
}

/* IQ4_XS: sub-block j is the 16 bytes at 8 + 16 j, nibbles as Q4_0. */
static void dequant_iq4_xs(const uint8_t *restrict b, long nb, float *restrict y) {
    for (long i = 0; i < nb; i++, b += 136) {
        const float d = half_to_float(b);
        for (int j = 0; j < 8; j++, y += 32) {
            const float dl = d * (float)luhd_iq4xs_scale(b, j);
            const uint8_t *q = b + 8 + 16 * j;
            for (int l = 0; l < 16; l++) {
                y[l] = dl * (float)luhd_iq4_values[q[l] & 0x0F];
                y[l + 16] = dl * (float)luhd_iq4_values[q[l] >> 4];
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
    case LUHD_QF_Q4_1: dequant_q4_1(b, n / 32, dst); break;
    case LUHD_QF_Q5_1: dequant_q5_1(b, n / 32, dst); break;
    case LUHD_QF_IQ4_NL: dequant_iq4_nl(b, n / 32, dst); break;
    case LUHD_QF_Q2_K: dequant_q2_k(b, n / 256, dst); break;
    case LUHD_QF_Q3_K: dequant_q3_k(b, n / 256, dst); break;
    case LUHD_QF_Q5_K: dequant_q5_k(b, n / 256, dst); break;
    case LUHD_QF_IQ4_XS: dequant_iq4_xs(b, n / 256, dst); break;
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
