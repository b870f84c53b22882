/* Integer matrix-vector kernels for the block formats with AVX-512 VNNI (vpdpbusd).
 *
 * x is quantized once per call to int8 per 32-element block (scale dx = max|x| / 127, values
 * rounded to nearest even); the kernels then take integer dot products of 64 weights (two
 * blocks) with 64 x values per instruction and apply both blocks' scales in f32.
 *
 * Q8_0 and Q4_0 run in groups of 8 blocks (256 weights), Q4_K and Q6_K per super-block of
 * 256: the weight scales of a group are widened together; the offset of Q8_0 (its sign) and
 * Q4_0 (its -8) is folded into each block's integer dot product (quant_vnni_common.h), that of
 * Q4_K (its mins) and Q6_K (its -32) becomes a small dot product with per-block sums of x; the
 * prepared x is compact (int8 values plus a few floats per 256 weights) so that it
 * stays in the L1 cache while it is re-read for every weight row. */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))), apply_to = function)
#include "quant_vnni_common.h"

/* Quantizes one 32-element block: returns dx, writes rounded x / dx into q. A block with a
 * non-finite value gets dx = NaN so the result is NaN, as in f32 arithmetic. */
static float quantize_block(const float *x, int8_t q[32]) {
    float amax = 0.0f;
    int finite = 1;
    for (int j = 0; j < 32; j++) {
        if (!isfinite(x[j])) finite = 0;
        amax = fmaxf(amax, fabsf(x[j]));
    }
    if (!finite) {
        memset(q, 0, 32);
        return NAN;
    }
    const float dx = amax / 127.0f;
    const float id = dx != 0.0f ? 1.0f / dx : 0.0f;
    for (int j = 0; j < 32; j++) {
        float v = nearbyintf(x[j] * id);
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[j] = (int8_t)v;
    }
    return dx;
}

/* quantize_block for a block without infinities or NaNs, 16 lanes at a time (the same operations
 * on each element, so the same bytes and dx); *s0 / *s1 get the sums of the two halves. */
static float quantize_block_finite(__m512 x0, __m512 x1, int8_t q[32], int *s0, int *s1) {
    const __m512 a = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1));
    const float amax = fmaxf(0.0f, _mm512_reduce_max_ps(a));
    const float dx = amax / 127.0f;
    const float id = dx != 0.0f ? 1.0f / dx : 0.0f;
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f), vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(
        _mm512_roundscale_ps(_mm512_mul_ps(x0, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), lo), hi));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(
        _mm512_roundscale_ps(_mm512_mul_ps(x1, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), lo), hi));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(q1));
    *s0 = _mm512_reduce_add_epi32(q0);
    *s1 = _mm512_reduce_add_epi32(q1);
    return dx;
}

/* ---- Q8_0 and Q4_0 in groups of 8 blocks (256 weights) ----
 * The arithmetic and the prepared x are defined in quant_vnni_common.h (g8_accumulate): these
 * kernels only bring the stored bytes of a group into its 4 operands. */
size_t luhd_quant_vnni_g8_row_stride(long cols) {
    const size_t ng = (size_t)(cols / 256);
    return (ng * G8_PREP_BYTES + 7 * 36 + 63) / 64 * 64;
}

/* quantize_block, also giving the sum of the int8 values (0 for a non-finite block). */
static float quantize_block_sum(const float *x, int8_t q[32], int *sum) {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    if (_mm512_fpclass_ps_mask(x0, 0x99) | _mm512_fpclass_ps_mask(x1, 0x99)) {
        *sum = 0;
        return quantize_block(x, q);
    }
    int s0, s1;
    const float dx = quantize_block_finite(x0, x1, q, &s0, &s1);
    *sum = s0 + s1;
    return dx;
}

/* x for the Q8_0 (offset 128) or Q4_0 (offset 8) kernels, m rows. */
static void prepare_g8(const float *x, long ldx, long cols, int m, void *scratch, int offset) {
    const size_t stride = luhd_quant_vnni_g8_row_stride(cols);
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    __m512i tidx[4];
    g8_transpose_index(tidx);
    for (int i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)scratch + (size_t)i * stride;
        const float *xi = x + i * ldx;
        for (long g = 0; g < ng; g++) {
            uint8_t *gp = row + g * G8_PREP_BYTES;
            int32_t *off = (int32_t *)(gp + 256);
            float *dx = (float *)(gp + 288);
            int8_t q[256];
            for (int b = 0; b < 8; b++) {
                int sum;
                dx[b] = quantize_block_sum(xi + 32 * (8 * g + b), q + 32 * b, &sum);
                off[b] = -offset * sum;
            }
            __m512i z[4], o[4];
            for (int p = 0; p < 4; p++) z[p] = _mm512_loadu_si512(q + 64 * p);
            g8_transpose(z, tidx, o);
            for (int k = 0; k < 4; k++) _mm512_storeu_si512(gp + 64 * k, o[k]);
        }
        int8_t *tq = (int8_t *)(row + ng * G8_PREP_BYTES);
        float *td = (float *)(tq + 32 * nt);
        for (long t = 0; t < nt; t++) td[t] = quantize_block(xi + 32 * (8 * ng + t), tq + 32 * t);
    }
}

void luhd_quant_prepare_vnni_q8_0(const float *x, long ldx, long cols, int m, void *scratch) {
    prepare_g8(x, ldx, cols, m, scratch, 128);
}

void luhd_quant_prepare_vnni_q4_0(const float *x, long ldx, long cols, int m, void *scratch) {
    prepare_g8(x, ldx, cols, m, scratch, 8);
}

/* A stored-layout Q8_0 or Q4_0 row's result for one row of x (prepared at xrow): hsum8 of its
 * group accumulator acc, plus each of the nt blocks after the last whole group (the first at
 * tail; Q8_0: f16 scale + 32 int8, Q4_0: f16 scale + 16 nibble bytes, low nibbles weights 0-15)
 * as its exact integer dot product with x's int8 values times (d * dx), in block order. */
static inline __attribute__((always_inline)) float g8_stored_row_result(__m256 acc, const uint8_t *tail, int format,
                                                                        const uint8_t *xrow, long ng, long nt) {
    const size_t block_bytes = format == LUHD_QF_Q8_0 ? 34 : 18;
    const int8_t *tq = (const int8_t *)(xrow + ng * G8_PREP_BYTES);
    const float *td = (const float *)(tq + 32 * nt);
    float t = hsum8(acc);
    for (long k = 0; k < nt; k++) {
        const uint8_t *bt = tail + block_bytes * (size_t)k;
        const int8_t *xq = tq + 32 * k;
        int32_t sum = 0;
        if (format == LUHD_QF_Q8_0) {
            for (int j = 0; j < 32; j++) sum += (int8_t)bt[2 + j] * xq[j];
        } else {
            for (int j = 0; j < 16; j++) sum += ((bt[2 + j] & 0x0F) - 8) * xq[j] + ((bt[2 + j] >> 4) - 8) * xq[j + 16];
        }
        t += (float)sum * (h2f(bt) * td[k]);
    }
    return t;
}

/* Q8_0, stored layout: a group is 8 blocks of 34 bytes (f16 scale, 32 int8). */
static inline __attribute__((always_inline)) void q8_0_rows(const uint8_t *w, size_t rb, long r0, long r1, long cols,
                                                            const uint8_t *prep, size_t pstride, int m,
                                                            float *y, long ldy) {
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    const __m512i k128 = _mm512_set1_epi8((char)0x80);
    __m512i tidx[4];
    g8_transpose_index(tidx);
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        __m256 acc[4];
        for (int i = 0; i < 4; i++) acc[i] = _mm256_setzero_ps();
        for (long g = 0; g < ng; g++, b += 272) {
            const uint64_t lo = (uint64_t)load16(b) | (uint64_t)load16(b + 34) << 16 |
                                (uint64_t)load16(b + 68) << 32 | (uint64_t)load16(b + 102) << 48;
            const uint64_t hi = (uint64_t)load16(b + 136) | (uint64_t)load16(b + 170) << 16 |
                                (uint64_t)load16(b + 204) << 32 | (uint64_t)load16(b + 238) << 48;
            const __m256 d8 = _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
            __m512i z[4], wq[4];
            for (int p = 0; p < 4; p++) {
                const uint8_t *bp = b + 68 * p;
                z[p] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(bp + 2))),
                                                           _mm256_loadu_si256((const __m256i *)(bp + 36)), 1), k128);
            }
            g8_transpose(z, tidx, wq);
            for (int i = 0; i < m; i++) acc[i] = g8_accumulate(acc[i], wq, d8, prep + (size_t)i * pstride + g * G8_PREP_BYTES);
        }
        for (int i = 0; i < m; i++) y[i * ldy + r] = g8_stored_row_result(acc[i], b, LUHD_QF_Q8_0, prep + (size_t)i * pstride, ng, nt);
    }
}

/* The 8 f16 scales of a Q4_0 group (bytes 0, 18, ..., 126: words 0, 9, ..., 63 of its first
 * 128 bytes) widened to f32, from two 64-byte loads with one word permutation. */
static inline __m256 q4_0_group_scales(__m512i l0, __m512i l1) {
    const __m512i widx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 0, 0, 0, 63, 54, 45, 36, 27, 18, 9, 0);
    return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(l0, widx, l1)));
}

/* Q4_0, stored layout: a group is 8 blocks of 18 bytes (f16 scale, 16 nibble bytes). The nibble
 * bytes 4h..4h+3 (T0) and 8 + 4h.. (T1) of block b go to 32-bit lane b + 8h of two registers
 * (their low and high nibbles are then operands 0 and 1, 2 and 3): word permutations of the
 * group's first 128 bytes for blocks 0-6, and of bytes 80-143 for block 7. */
static inline __attribute__((always_inline)) void q4_0_rows(const uint8_t *w, size_t rb, long r0, long r1, long cols,
                                                            const uint8_t *prep, size_t pstride, int m,
                                                            float *y, long ldy) {
    const long nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i idx[2], idx7[2];
    for (int t = 0; t < 2; t++) {
        uint16_t ix[32], ix7[32];
        for (int v = 0; v < 32; v++) {
            const int l = v / 2, u = v % 2, b = l % 8, h = l / 8;
            ix[v] = (uint16_t)(b < 7 ? 9 * b + 1 + 4 * t + 2 * h + u : 0);  /* bytes 18b + 2 + 8t + 4h.. */
            ix7[v] = (uint16_t)(24 + 4 * t + 2 * h + u);                     /* bytes 128 + 8t + 4h.. at 80 */
        }
        idx[t] = _mm512_loadu_si512(ix);
        idx7[t] = _mm512_loadu_si512(ix7);
    }
    const __mmask32 block7 = 0xC000C000u;
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        __m256 acc[4];
        for (int i = 0; i < 4; i++) acc[i] = _mm256_setzero_ps();
        for (long g = 0; g < ng; g++, b += 144) {
            const __m512i l0 = _mm512_loadu_si512(b), l1 = _mm512_loadu_si512(b + 64), l2 = _mm512_loadu_si512(b + 80);
            const __m256 d8 = q4_0_group_scales(l0, l1);
            const __m512i t0 = _mm512_mask_permutexvar_epi16(_mm512_permutex2var_epi16(l0, idx[0], l1), block7, idx7[0], l2);
            const __m512i t1 = _mm512_mask_permutexvar_epi16(_mm512_permutex2var_epi16(l0, idx[1], l1), block7, idx7[1], l2);
            const __m512i wq[4] = {_mm512_and_si512(t0, m4), _mm512_and_si512(_mm512_srli_epi16(t0, 4), m4),
                                   _mm512_and_si512(t1, m4), _mm512_and_si512(_mm512_srli_epi16(t1, 4), m4)};
            for (int i = 0; i < m; i++) acc[i] = g8_accumulate(acc[i], wq, d8, prep + (size_t)i * pstride + g * G8_PREP_BYTES);
        }
        for (int i = 0; i < m; i++) y[i * ldy + r] = g8_stored_row_result(acc[i], b, LUHD_QF_Q4_0, prep + (size_t)i * pstride, ng, nt);
    }
}

/* ---- K formats (super-blocks of 256) ----
 * Prepared x of one row, natural order: K int8 values (32-element blocks, dx = max|x| / 127),
 * then f32 arrays dx32[K/32] (the block scales), xs32[K/32] (sums of the quantized x per 32,
 * times dx), dx16[K/16] (dx32 repeated for each half block) and xs16[K/16] (the same sums per
 * 16). Using the quantized x everywhere makes every kernel compute W · x~ exactly up to f32
 * rounding, where x~ = dx * round(x / dx) is the int8 image of x. */
size_t luhd_quant_vnni_k_row_stride(long cols) {
    size_t b = (size_t)cols + (size_t)(cols / 32) * 8 + (size_t)(cols / 16) * 8;
    return (b + 63) / 64 * 64;
}

void luhd_quant_prepare_vnni_k(const float *x, long ldx, long cols, int m, void *scratch) {
    const size_t stride = luhd_quant_vnni_k_row_stride(cols);
    const long nb = cols / 32;
    for (int i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)scratch + (size_t)i * stride;
        int8_t *xq = (int8_t *)row;
        float *dx32 = (float *)(row + cols), *xs32 = dx32 + nb, *dx16 = xs32 + nb, *xs16 = dx16 + 2 * nb;
        const float *xi = x + i * ldx;
        for (long b = 0; b < nb; b++) {
            const __m512 x0 = _mm512_loadu_ps(xi + 32 * b), x1 = _mm512_loadu_ps(xi + 32 * b + 16);
            int s0 = 0, s1 = 0;
            float dx;
            if (_mm512_fpclass_ps_mask(x0, 0x99) | _mm512_fpclass_ps_mask(x1, 0x99)) {
                dx = quantize_block(xi + 32 * b, xq + 32 * b);
            } else {
                dx = quantize_block_finite(x0, x1, xq + 32 * b, &s0, &s1);
            }
            dx32[b] = dx;
            xs32[b] = dx * (float)(s0 + s1);
            dx16[2 * b] = dx16[2 * b + 1] = dx;
            xs16[2 * b] = dx * (float)s0;
            xs16[2 * b + 1] = dx * (float)s1;
        }
    }
}

static inline __attribute__((always_inline)) void q4_k_rows(const uint8_t *w, size_t rb, long r0, long r1, long cols,
                                                            const uint8_t *prep, size_t pstride, int m,
                                                            float *y, long ldy) {
    const long nsb = cols / 256;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512i pidx[4];
    q4_k_lane_index(pidx);
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        __m512 acc[4][2];
        __m256 macc[4];
        for (int i = 0; i < 4; i++) { acc[i][0] = acc[i][1] = _mm512_setzero_ps(); macc[i] = _mm256_setzero_ps(); }
        for (long s = 0; s < nsb; s++, b += 144) {
            prefetch_span(b + DECODE_PREFETCH_BYTES, 144);
            __m256 scf, mnf;
            q4_k_scales_f32(b, &scf, &mnf);
            __m512i wq[4];
            for (int c = 0; c < 4; c++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
                wq[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                           _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
            }
            q4_k_accumulate(wq, scf, mnf, pidx, prep, pstride, cols, s, m, acc, macc);
        }
        for (int i = 0; i < m; i++) y[i * ldy + r] = q4_k_result(acc[i][0], acc[i][1], macc[i]);
    }
}

static inline __attribute__((always_inline)) void q6_k_rows(const uint8_t *w, size_t rb, long r0, long r1, long cols,
                                                            const uint8_t *prep, size_t pstride, int m,
                                                            float *y, long ldy) {
    const long nsb = cols / 256;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x30);
    /* Word shifts that move the high-bit pairs of elements 0-31 / 32-63 of a half (H << 4, H << 2)
     * and 64-95 / 96-127 (H, H >> 2) to bits 4-5. */
    const __m512i shl = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4), shr = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    const __m512i shlw = _mm512_or_si512(shl, _mm512_slli_epi64(shl, 16)), shl16 = _mm512_or_si512(shlw, _mm512_slli_epi64(shlw, 32));
    const __m512i shrw = _mm512_or_si512(shr, _mm512_slli_epi64(shr, 16)), shr16 = _mm512_or_si512(shrw, _mm512_slli_epi64(shrw, 32));
    __m512i pidx[4];
    k16_lane_index(pidx);
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        __m512 acc[4][2], oacc[4];
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = oacc[i] = _mm512_setzero_ps();
        for (long s = 0; s < nsb; s++, b += 210) {
            prefetch_span(b + DECODE_PREFETCH_BYTES, 210);
            const __m512 d = _mm512_set1_ps(h2f(b + 208));
            const __m512 scf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                _mm_loadu_si128((const __m128i *)(b + 192)))), d);
            __m512i wq[4];
            /* Half h: its 64 low-nibble bytes L hold elements 0-63 (low nibbles) and 64-127 (high
             * nibbles) in order; its 32 high-bit bytes H, seen twice, give each element its bits
             * 4-5 after the word shifts above. */
            for (int h = 0; h < 2; h++) {
                const __m512i L = _mm512_loadu_si512(b + 64 * h);
                const __m512i HH = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
                wq[2 * h] = _mm512_ternarylogic_epi64(_mm512_and_si512(L, m4), _mm512_sllv_epi16(HH, shl16), m3, 0xF8);
                wq[2 * h + 1] = _mm512_ternarylogic_epi64(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                                          _mm512_srlv_epi16(HH, shr16), m3, 0xF8);
            }
            q6_k_accumulate(wq, scf, pidx, prep, pstride, cols, s, m, acc, oacc);
        }
        for (int i = 0; i < m; i++) y[i * ldy + r] = q6_k_result(acc[i][0], acc[i][1], oacc[i]);
    }
}

/* ---- The other formats (Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K, IQ4_XS): one loop ----
 * An unpacker turns a group of 256 weights (a super-block, or 8 blocks of 32) into 256 unsigned
 * bytes u in natural order (4 registers of 64), and 16 f32 scales s and offsets o, one per 16
 * weights, with w = s u - o. With the K preparation of x (dx16, xs16 = dx * sum(xq) per 16):
 *   y = sum_groups sum_16 (s dx16) dot(u, xq) - o xs16,
 * the dot products taken by vpdpbusd 64 bytes at a time, as q6_k_rows does.
 *   Q4_1: u = q, s = d, o = -m.        Q5_0: u = q (5 bits), s = d, o = 16 d.
 *   Q5_1: u = q, s = d, o = -m.        IQ4_NL: u = K[q] + 128, s = d, o = 128 d.
 *   Q2_K: u = q, s = d sc, o = dmin m. Q3_K: u = lo + 4 hbit, s = d (sc - 32), o = 4 s.
 *   Q5_K: u = q, s = d sc, o = dmin m. IQ4_XS: u = K[q] + 128, s = d (ls - 32), o = 128 s.
 * The blocks of a 32-block format after its last full group are copied into a zeroed group
 * (zero scales and offsets contribute nothing) and their x read with masked loads. */

/* Bytes 0-15: low nibbles of qa[0..15], 16-31: their high nibbles, 32-63: the same for qb. */
static inline __m512i nibbles64(const uint8_t *qa, const uint8_t *qb) {
    const __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qa))),
                                         _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qb)), 1);
    return _mm512_and_si512(_mm512_srlv_epi64(t, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)), _mm512_set1_epi8(0x0F));
}

/* The f16 pairs at the start of the 8 blocks j of a group (stride bb): d in the low half of
 * dword j, m (Q4_1, Q5_1) in the high half. */
static inline __m256i block_heads(const uint8_t *g, int bb) {
    return _mm256_i32gather_epi32((const int *)g, _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(bb)), 1);
}

/* The low (half = 0) or high (half = 1) f16 of each dword of heads as f32, dword j in lanes 2j
 * and 2j + 1. */
static inline __m512 block_halves(__m256i heads, int half) {
    const __m128i h = _mm256_cvtepi32_epi16(half ? _mm256_srli_epi32(heads, 16) : heads);
    return _mm512_permutexvar_ps(_mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
                                 _mm512_castps256_ps512(_mm256_cvtph_ps(h)));
}

/* 8 signed bytes (one per sub-block of 32, byte j of v) as f32, each in lanes 2j and 2j + 1.
 * Built in registers: small arrays stored and reloaded as a vector stall store forwarding. */
static inline __m512 sub32_halves(uint64_t v) {
    return _mm512_permutexvar_ps(_mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
                                 _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_cvtsi64_si128((long long)v))));
}

/* The fifth bits of two blocks of 32 (u32 masks, bit j = element j) added to u as 16. */
static inline __m512i add_bit4(__m512i u, uint32_t ha, uint32_t hb, int value) {
    return _mm512_mask_add_epi8(u, (__mmask64)((uint64_t)ha | (uint64_t)hb << 32), u, _mm512_set1_epi8((char)value));
}

typedef struct { __m512i u[4]; __m512 s, o; } wgroup;

static inline __attribute__((always_inline)) void unpack_q4_1(const uint8_t *g, __m512i tbl, wgroup *w) {
    (void)tbl;
    for (int k = 0; k < 4; k++) w->u[k] = nibbles64(g + 40 * k + 4, g + 40 * k + 24);
    const __m256i heads = block_heads(g, 20);
    w->s = block_halves(heads, 0);
    w->o = _mm512_sub_ps(_mm512_setzero_ps(), block_halves(heads, 1));
}

static inline __attribute__((always_inline)) void unpack_q5_0(const uint8_t *g, __m512i tbl, wgroup *w) {
    (void)tbl;
    for (int k = 0; k < 4; k++) {
        const uint8_t *a = g + 44 * k, *b = a + 22;
        uint32_t ha, hb;
        memcpy(&ha, a + 2, 4);
        memcpy(&hb, b + 2, 4);
        w->u[k] = add_bit4(nibbles64(a + 6, b + 6), ha, hb, 16);
    }
    w->s = block_halves(block_heads(g, 22), 0);
    w->o = _mm512_mul_ps(w->s, _mm512_set1_ps(16.0f));
}

static inline __attribute__((always_inline)) void unpack_q5_1(const uint8_t *g, __m512i tbl, wgroup *w) {
    (void)tbl;
    for (int k = 0; k < 4; k++) {
        const uint8_t *a = g + 48 * k, *b = a + 24;
        uint32_t ha, hb;
        memcpy(&ha, a + 4, 4);
        memcpy(&hb, b + 4, 4);
        w->u[k] = add_bit4(nibbles64(a + 8, b + 8), ha, hb, 16);
    }
    const __m256i heads = block_heads(g, 24);
    w->s = block_halves(heads, 0);
    w->o = _mm512_sub_ps(_mm512_setzero_ps(), block_halves(heads, 1));
}

static inline __attribute__((always_inline)) void unpack_iq4_nl(const uint8_t *g, __m512i tbl, wgroup *w) {
    for (int k = 0; k < 4; k++) w->u[k] = _mm512_shuffle_epi8(tbl, nibbles64(g + 36 * k + 2, g + 36 * k + 20));
    w->s = block_halves(block_heads(g, 18), 0);
    w->o = _mm512_mul_ps(w->s, _mm512_set1_ps(128.0f));
}

static inline __attribute__((always_inline)) void unpack_q2_k(const uint8_t *g, __m512i tbl, wgroup *w) {
    (void)tbl;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 16 + 32 * h));
        const __m256i s0 = _mm256_and_si256(q, m3), s1 = _mm256_and_si256(_mm256_srli_epi16(q, 2), m3);
        const __m256i s2 = _mm256_and_si256(_mm256_srli_epi16(q, 4), m3), s3 = _mm256_and_si256(_mm256_srli_epi16(q, 6), m3);
        w->u[2 * h] = _mm512_inserti64x4(_mm512_castsi256_si512(s0), s1, 1);
        w->u[2 * h + 1] = _mm512_inserti64x4(_mm512_castsi256_si512(s2), s3, 1);
    }
    const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)g));
    w->s = _mm512_mul_ps(_mm512_set1_ps(h2f(g + 80)), _mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(15))));
    w->o = _mm512_mul_ps(_mm512_set1_ps(h2f(g + 82)), _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4)));
}

static inline __attribute__((always_inline)) void unpack_q3_k(const uint8_t *g, __m512i tbl, wgroup *w) {
    (void)tbl;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)g);
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 32 + 32 * h));
        for (int p = 0; p < 2; p++) {
            const int s0 = 2 * p;   /* element runs s0 and s0 + 1 of this half: bits 2 s0, 2 s0 + 2 */
            const __m256i a = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s0), m3);
            const __m256i b = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s0 + 2), m3);
            const uint32_t ma = _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char)(1 << (4 * h + s0))));
            const uint32_t mb = _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char)(1 << (4 * h + s0 + 1))));
            w->u[2 * h + p] = add_bit4(_mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1), ma, mb, 4);
        }
    }
    /* The 16 scales of luhd_q3k_scale at once: low nibbles of bytes 0-7 then their high
     * nibbles; above them bits 2 (j / 4) of byte 8 + j % 4. */
    const __m128i v = _mm_maskz_loadu_epi8(0x0FFF, g + 96);
    const __m128i lo = _mm_and_si128(_mm_srlv_epi64(_mm_unpacklo_epi64(v, v), _mm_set_epi64x(4, 0)), _mm_set1_epi8(0x0F));
    const __m128i top = _mm_shuffle_epi8(v, _mm_set_epi8(11, 10, 9, 8, 11, 10, 9, 8, 11, 10, 9, 8, 11, 10, 9, 8));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(top, _mm_set_epi32(6, 4, 2, 0)), _mm_set1_epi8(3));
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    w->s = _mm512_mul_ps(_mm512_set1_ps(h2f(g + 108)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
    w->o = _mm512_mul_ps(w->s, _mm512_set1_ps(4.0f));
}

static inline __attribute__((always_inline)) void unpack_q5_k(const uint8_t *g, __m512i tbl, wgroup *w) {
    (void)tbl;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(g + 16));
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(g + 48 + 32 * c));
        const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                             _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
        const uint32_t ma = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * c))));
        const uint32_t mb = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * c + 1))));
        w->u[c] = add_bit4(u, ma, mb, 16);
    }
    uint32_t a0, a1, a2;   /* the scales and mins of luhd_q4k_scale_min, four bytes at a time */
    memcpy(&a0, g + 4, 4);
    memcpy(&a1, g + 8, 4);
    memcpy(&a2, g + 12, 4);
    const uint64_t sc = (uint64_t)(a0 & 0x3F3F3F3Fu) | (uint64_t)((a2 & 0x0F0F0F0Fu) | ((a0 >> 2) & 0x30303030u)) << 32;
    const uint64_t mn = (uint64_t)(a1 & 0x3F3F3F3Fu) | (uint64_t)(((a2 >> 4) & 0x0F0F0F0Fu) | ((a1 >> 2) & 0x30303030u)) << 32;
    w->s = _mm512_mul_ps(_mm512_set1_ps(h2f(g)), sub32_halves(sc));
    w->o = _mm512_mul_ps(_mm512_set1_ps(h2f(g + 2)), sub32_halves(mn));
}

static inline __attribute__((always_inline)) void unpack_iq4_xs(const uint8_t *g, __m512i tbl, wgroup *w) {
    for (int k = 0; k < 4; k++) w->u[k] = _mm512_shuffle_epi8(tbl, nibbles64(g + 8 + 32 * k, g + 24 + 32 * k));
    uint64_t ls = 0;
    for (int j = 0; j < 8; j++) ls |= (uint64_t)(uint8_t)luhd_iq4xs_scale(g, j) << (8 * j);
    w->s = _mm512_mul_ps(_mm512_set1_ps(h2f(g)), sub32_halves(ls));
    w->o = _mm512_mul_ps(w->s, _mm512_set1_ps(128.0f));
}

/* The row loop for unpacker UNPACK; BB: bytes per block of 32 (32-block formats: a group is 8
 * blocks, the tail a partial group), 0 for super-block formats. */
#define GROUP_ROWS(NAME, UNPACK, BB, GB)                                                                          \
    static inline __attribute__((always_inline)) void NAME(const uint8_t *w, size_t rb, long r0, long r1, long cols, \
                                                           const uint8_t *prep, size_t pstride, int m, float *y,      \
                                                           long ldy) {                                                \
        const long nb = cols / 32, ng = nb / 8, nt = (BB) ? nb - 8 * ng : 0;                                          \
        const __m512i tbl = iq4_table();                                                                              \
        __m512i pidx[4];                                                                                              \
        k16_lane_index(pidx);                                                                                         \
        for (long r = r0; r < r1; r++) {                                                                              \
            const uint8_t *b = w + (size_t)r * rb;                                                                    \
            __m512 acc[4][2], oacc[4];                                                                                \
            for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = oacc[i] = _mm512_setzero_ps();                        \
            for (long g = 0; g < ng + (nt > 0); g++) {                                                                \
                wgroup wg;                                                                                            \
                __mmask16 lanes = 0xFFFF;                                                                             \
                __mmask64 bytes[4] = {~0ull, ~0ull, ~0ull, ~0ull};                                                    \
                if (g < ng) {                                                                                         \
                    UNPACK(b + (GB) * g, tbl, &wg);                                                                   \
                } else {                                                                                              \
                    uint8_t part[8 * ((BB) ? (BB) : 1)] __attribute__((aligned(64)));                                 \
                    memset(part, 0, sizeof part);                                                                     \
                    memcpy(part, b + (GB) * g, (size_t)(nt * (BB)));                                                  \
                    UNPACK(part, tbl, &wg);                                                                           \
                    lanes = (__mmask16)((1u << (2 * nt)) - 1);                                                        \
                    for (int k = 0; k < 4; k++) {                                                                     \
                        const long valid = 32 * nt - 64 * k;                                                          \
                        bytes[k] = valid >= 64 ? ~0ull : valid <= 0 ? 0 : (1ull << valid) - 1;                        \
                    }                                                                                                 \
                }                                                                                                     \
                for (int i = 0; i < m; i++) {                                                                         \
                    const uint8_t *row = prep + (size_t)i * pstride;                                                  \
                    const float *dx16 = (const float *)(row + cols) + 2 * nb + 16 * g, *xs16 = dx16 + 2 * nb;         \
                    const __m512 sl = _mm512_mul_ps(wg.s, _mm512_maskz_loadu_ps(lanes, dx16));                       \
                    oacc[i] = _mm512_fmadd_ps(wg.o, _mm512_maskz_loadu_ps(lanes, xs16), oacc[i]);                     \
                    const uint8_t *xq = row + 256 * g;                                                                \
                    for (int k = 0; k < 4; k++) {                                                                     \
                        const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wg.u[k],                    \
                                                                 _mm512_maskz_loadu_epi8(bytes[k], xq + 64 * k));     \
                        acc[i][k & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(pidx[k], sl), \
                                                        acc[i][k & 1]);                                               \
                    }                                                                                                 \
                }                                                                                                     \
            }                                                                                                         \
            for (int i = 0; i < m; i++) y[i * ldy + r] = hsum16(_mm512_add_ps(acc[i][0], acc[i][1])) - hsum16(oacc[i]); \
        }                                                                                                             \
    }

/* K[q] + 128 as unsigned bytes, in every 128-bit lane (for vpshufb). */
static inline __m512i iq4_table(void) {
    uint8_t t[16];
    for (int j = 0; j < 16; j++) t[j] = (uint8_t)(luhd_iq4_values[j] + 128);
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t));
}

GROUP_ROWS(q4_1_rows, unpack_q4_1, 20, 160)
GROUP_ROWS(q5_0_rows, unpack_q5_0, 22, 176)
GROUP_ROWS(q5_1_rows, unpack_q5_1, 24, 192)
GROUP_ROWS(iq4_nl_rows, unpack_iq4_nl, 18, 144)
GROUP_ROWS(q2_k_rows, unpack_q2_k, 0, 84)
GROUP_ROWS(q3_k_rows, unpack_q3_k, 0, 110)
GROUP_ROWS(q5_k_rows, unpack_q5_k, 0, 176)
GROUP_ROWS(iq4_xs_rows, unpack_iq4_xs, 0, 136)
#undef GROUP_ROWS

void luhd_quant_matvec_vnni(int format, const void *w, size_t rb, long r0, long r1, long cols,
                            const void *prepared, int m, float *y, long ldy) {
    const uint8_t *wb = (const uint8_t *)w, *prep = (const uint8_t *)prepared;
#define VCASE(fn, stride)                                                              \
    switch (m) {                                                                       \
    case 1: fn(wb, rb, r0, r1, cols, prep, stride, 1, y, ldy); break;                  \
    case 2: fn(wb, rb, r0, r1, cols, prep, stride, 2, y, ldy); break;                  \
    case 3: fn(wb, rb, r0, r1, cols, prep, stride, 3, y, ldy); break;                  \
    default: fn(wb, rb, r0, r1, cols, prep, stride, 4, y, ldy); break;                 \
    }
    switch (format) {
    case LUHD_QF_Q8_0: VCASE(q8_0_rows, luhd_quant_vnni_g8_row_stride(cols)) break;
    case LUHD_QF_Q4_0: VCASE(q4_0_rows, luhd_quant_vnni_g8_row_stride(cols)) break;
    case LUHD_QF_Q4_K: VCASE(q4_k_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q6_K: VCASE(q6_k_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q4_1: VCASE(q4_1_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q5_0: VCASE(q5_0_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q5_1: VCASE(q5_1_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_IQ4_NL: VCASE(iq4_nl_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q2_K: VCASE(q2_k_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q3_K: VCASE(q3_k_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_Q5_K: VCASE(q5_k_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    case LUHD_QF_IQ4_XS: VCASE(iq4_xs_rows, luhd_quant_vnni_k_row_stride(cols)) break;
    default: break;
    }
#undef VCASE
}
#pragma clang attribute pop
