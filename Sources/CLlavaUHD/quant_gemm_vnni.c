/* Int8 matrix products for prefill: y[i][n] = sum_k W[n][k] * x[i][k] for many rows of x, with
 * AVX-512 VNNI, for the block formats with x quantized per block of 32 (declared in
 * quant_kernels.h): Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K and IQ4_XS. Q3_K, Q4_K, Q5_K and
 * Q6_K take x per super-block of 256 in quant_gemm_k_vnni.c instead.
 *
 * x is quantized like the matrix-vector kernels do (int8 per 32-element block, dx = max|x| / 127,
 * round to nearest even) and stored as x + 128 (the unsigned operand of vpdpbusd), with per block
 * dx, sx = dx * sum(xq) and the same sums per 16-element half. The weights are unpacked 16
 * rows at a time (two such tiles side by side for a call of 17-32 rows, each broadcast of x then
 * feeding both) into a tile laid out for vpdpbusd: per 32-element block, 8 groups of 64 bytes
 * (row n's 4 consecutive weights in lane n), then for each half of the block (16 elements) 16
 * f32 scales s and 16 int32 corrections -128 * sum(w), then 16 f32 offsets o per half, so that
 *   y[i][n] = sum_b sum_h s[b,h][n] dx[i][b] (sum_k (xq + 128) w - 128 sum_k w) - o[b,h][n] sx[i][b,h].
 * Q8_0: w = q, s = d, o = 0.  Q4_0: w = q - 8, s = d, o = 0.
 * Q2_K and IQ4_XS go through block_ints (below): w the signed integer weight, o its offset.
 * Q2_K has different scales and offsets in the two halves; the others
 * take the whole block at once (one scale and the offset of the first half; the two halves'
 * corrections added at packing time), and the formats without an offset (Q8_0, Q4_0, IQ4_NL)
 * skip its multiply-add. */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))), apply_to = function)

#define TILE_BLOCK_BYTES (512 + 64 * 6)
/* Rows of x per call of the 32-row product (tile_rows2): 8 int32 and 8 f32 accumulators (16 int32
 * with split halves); 5 and 6 measured no faster on Zen 4. */
#define ROWS_32 4
/* Offsets inside a tile block. */
#define T_S0 512
#define T_C0 576
#define T_S1 640
#define T_C1 704
#define T_O 768
#define T_O1 832

/* How tile_rows treats the two halves of a block, and whether it applies offsets. */
enum { WHOLE = 0, SPLIT_SCALES_OFFSETS = 2, WHOLE_NO_OFFSET = 3 };

static int block_mode(int format) {
    switch (format) {
    case LUHD_QF_Q2_K: return SPLIT_SCALES_OFFSETS;
    case LUHD_QF_Q8_0: case LUHD_QF_Q4_0: case LUHD_QF_IQ4_NL: return WHOLE_NO_OFFSET;
    default: return WHOLE;
    }
}

static inline float gh2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

int luhd_quant_gemm_supports(int format) {
    return luhd_quant_block_elements(format) > 1 && !luhd_quant_gemm_k_supports(format);
}

/* A row of prepared x: cols bytes xq + 128, then f32 dx[nb], sx[nb], sx16[2 nb]. */
size_t luhd_quant_gemm_x_bytes(long cols, long m) {
    const size_t row = (size_t)cols + (size_t)(cols / 32) * 16;
    return (row + 63) / 64 * 64 * (size_t)m;
}

size_t luhd_quant_gemm_tile_bytes(long cols) { return 2 * (size_t)(cols / 32) * TILE_BLOCK_BYTES; }

/* Lane j of the result: the maximum (hmax16) or the sum (hsum16) of the 16 lanes of v[j]. A
 * tree of 15 two-source permutes and max / add pairs for 16 vectors, in place of 16 reductions
 * of one vector each. The maximum of finite magnitudes and the integer sums do not depend on
 * the order, so each lane is the value _mm512_reduce_max_ps / _mm512_reduce_add_epi32 gives. */
#define HREDUCE16(NAME, T, OP, PERMUTE)                                                                        \
    static inline __attribute__((always_inline)) T NAME(const T v[16]) {                                     \
        const __m512i l8 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);          \
        const __m512i l4 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);       \
        const __m512i l2 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);       \
        const __m512i l1 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);      \
        T a[8], b[4], c[2];                                                                                  \
        for (int j = 0; j < 8; j++)                                                                          \
            a[j] = OP(PERMUTE(v[2 * j], l8, v[2 * j + 1]),                                                   \
                      PERMUTE(v[2 * j], _mm512_add_epi32(l8, _mm512_set1_epi32(8)), v[2 * j + 1]));           \
        for (int j = 0; j < 4; j++)                                                                          \
            b[j] = OP(PERMUTE(a[2 * j], l4, a[2 * j + 1]),                                                   \
                      PERMUTE(a[2 * j], _mm512_add_epi32(l4, _mm512_set1_epi32(4)), a[2 * j + 1]));           \
        for (int j = 0; j < 2; j++)                                                                          \
            c[j] = OP(PERMUTE(b[2 * j], l2, b[2 * j + 1]),                                                   \
                      PERMUTE(b[2 * j], _mm512_add_epi32(l2, _mm512_set1_epi32(2)), b[2 * j + 1]));           \
        return OP(PERMUTE(c[0], l1, c[1]), PERMUTE(c[0], _mm512_add_epi32(l1, _mm512_set1_epi32(1)), c[1])); \
    }
HREDUCE16(hmax16, __m512, _mm512_max_ps, _mm512_permutex2var_ps)
HREDUCE16(hsum16, __m512i, _mm512_add_epi32, _mm512_permutex2var_epi32)
#undef HREDUCE16

/* One 32-element block in two 16-lane vectors: max|x| and the finite check reduced across
 * lanes, x * (1 / dx) rounded to nearest even (vrndscaleps, as nearbyintf in the default
 * rounding mode) and clamped to +-127, the same values as quantize_block of the matrix-vector
 * kernels. A block holding a non-finite value gets dx = NaN (its products are NaN whatever its
 * bytes). Groups of 16 blocks are done together (their maxima, 1 / dx and sums as vectors of
 * 16 blocks: hmax16, hsum16), with the same operations on every value, so the prepared bytes
 * are those of the one-block loop, which does the rest of a row. */
#define ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
void luhd_quant_gemm_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf) {
    const size_t stride = luhd_quant_gemm_x_bytes(cols, 1);
    const long nb = cols / 32;
    const __m512 magnitude = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    const __m512 inf = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m512i bias = _mm512_set1_epi32(128);
    for (long i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)xbuf + (size_t)i * stride;
        float *dxs = (float *)(row + cols), *sxs = dxs + nb, *sx16 = sxs + nb;
        long b = 0;
        for (; b + 16 <= nb; b += 16) {
            __m512 amax[16];
            __m512i sums0[16], sums1[16];
            __mmask16 finite = 0;
            for (int j = 0; j < 16; j++) {
                const float *xb = x + i * ldx + 32 * (b + j);
                const __m512 a0 = _mm512_and_ps(_mm512_loadu_ps(xb), magnitude), a1 = _mm512_and_ps(_mm512_loadu_ps(xb + 16), magnitude);
                if ((__mmask16)(_mm512_cmp_ps_mask(a0, inf, _CMP_LT_OQ) & _mm512_cmp_ps_mask(a1, inf, _CMP_LT_OQ)) == (__mmask16)0xFFFF)
                    finite |= (__mmask16)(1u << j);
                amax[j] = _mm512_max_ps(a0, a1);
            }
            const __m512 dx = _mm512_mask_div_ps(_mm512_set1_ps(NAN), finite, hmax16(amax), hi);
            float ids[16];
            _mm512_storeu_ps(ids, _mm512_maskz_div_ps(finite & _mm512_cmp_ps_mask(dx, _mm512_setzero_ps(), _CMP_NEQ_UQ),
                                                      _mm512_set1_ps(1.0f), dx));
            for (int j = 0; j < 16; j++) {
                const float *xb = x + i * ldx + 32 * (b + j);
                const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16), id = _mm512_set1_ps(ids[j]);
                const __m512 q0 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), ROUND_NEAREST), lo), hi);
                const __m512 q1 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), ROUND_NEAREST), lo), hi);
                sums0[j] = _mm512_cvttps_epi32(q0);
                sums1[j] = _mm512_cvttps_epi32(q1);
                _mm_storeu_si128((__m128i *)(row + 32 * (b + j)), _mm512_cvtepi32_epi8(_mm512_add_epi32(sums0[j], bias)));
                _mm_storeu_si128((__m128i *)(row + 32 * (b + j) + 16), _mm512_cvtepi32_epi8(_mm512_add_epi32(sums1[j], bias)));
            }
            const __m512i sum0 = hsum16(sums0), sum1 = hsum16(sums1);
            const __m512 h0 = _mm512_mul_ps(dx, _mm512_cvtepi32_ps(sum0)), h1 = _mm512_mul_ps(dx, _mm512_cvtepi32_ps(sum1));
            const __m512i even = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            _mm512_storeu_ps(dxs + b, dx);
            _mm512_storeu_ps(sxs + b, _mm512_mul_ps(dx, _mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1))));
            _mm512_storeu_ps(sx16 + 2 * b, _mm512_permutex2var_ps(h0, even, h1));
            _mm512_storeu_ps(sx16 + 2 * b + 16, _mm512_permutex2var_ps(h0, _mm512_add_epi32(even, _mm512_set1_epi32(8)), h1));
        }
        for (; b < nb; b++) {
            const float *xb = x + i * ldx + 32 * b;
            const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
            const __m512 a0 = _mm512_and_ps(v0, magnitude), a1 = _mm512_and_ps(v1, magnitude);
            const int finite = (__mmask16)(_mm512_cmp_ps_mask(a0, inf, _CMP_LT_OQ) & _mm512_cmp_ps_mask(a1, inf, _CMP_LT_OQ))
                               == (__mmask16)0xFFFF;
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
            const float dx = finite ? amax / 127.0f : NAN;
            const __m512 id = _mm512_set1_ps(finite && dx != 0.0f ? 1.0f / dx : 0.0f);
            const __m512 q0 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), ROUND_NEAREST), lo), hi);
            const __m512 q1 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), ROUND_NEAREST), lo), hi);
            const __m512i i0 = _mm512_cvttps_epi32(q0), i1 = _mm512_cvttps_epi32(q1);
            _mm_storeu_si128((__m128i *)(row + 32 * b), _mm512_cvtepi32_epi8(_mm512_add_epi32(i0, bias)));
            _mm_storeu_si128((__m128i *)(row + 32 * b + 16), _mm512_cvtepi32_epi8(_mm512_add_epi32(i1, bias)));
            const int sum0 = _mm512_reduce_add_epi32(i0), sum1 = _mm512_reduce_add_epi32(i1);
            dxs[b] = dx;
            sxs[b] = dx * (float)(sum0 + sum1);
            sx16[2 * b] = dx * (float)sum0;
            sx16[2 * b + 1] = dx * (float)sum1;
        }
    }
}
#undef ROUND_NEAREST

/* Block b (32 elements) of a row of a super-block format without a gathered unpacking below
 * (Q2_K, IQ4_XS):
 * signed integer weights w, and per half h the scale s[h] and offset o[h] with value = s w - o. */
static void block_ints(int format, const uint8_t *row, long b, int8_t w[32], float s[2], float o[2]) {
    const int t = (int)(b % 8);
    if (format == LUHD_QF_Q2_K) {   /* elements 32 t + l: bits 2 (t % 4) of byte 16 + 32 (t / 4) + l */
        const uint8_t *p = row + (size_t)(b / 8) * 84;
        const uint8_t *qs = p + 16 + 32 * (t / 4);
        for (int l = 0; l < 32; l++) w[l] = (int8_t)((qs[l] >> (2 * (t % 4))) & 3);
        for (int h = 0; h < 2; h++) {
            const int j = 2 * t + h;
            s[h] = gh2f(p + 80) * (float)(p[j] & 0x0F);
            o[h] = gh2f(p + 82) * (float)(p[j] >> 4);
        }
    } else {   /* IQ4_XS: sub-block t: 16 bytes at 8 + 16 t, nibbles as Q4_0 */
        const uint8_t *p = row + (size_t)(b / 8) * 136;
        for (int j = 0; j < 32; j++) w[j] = luhd_iq4_values[(p[8 + 16 * t + j % 16] >> (4 * (j / 16))) & 0x0F];
        s[0] = s[1] = gh2f(p) * (float)luhd_iq4xs_scale(p, t);
        o[0] = o[1] = 0.0f;
    }
}

/* Bits 0-3 of each dword moved to bit 4 of its bytes 0-3 (Q5's fifth bits of 4 elements). */
static inline __m512i bit4_spread(__m512i h) {
    const __m512i one = _mm512_set1_epi32(1);
    __m512i r = _mm512_slli_epi32(_mm512_and_si512(h, one), 4);
    r = _mm512_or_si512(r, _mm512_slli_epi32(_mm512_and_si512(h, _mm512_slli_epi32(one, 1)), 11));
    r = _mm512_or_si512(r, _mm512_slli_epi32(_mm512_and_si512(h, _mm512_slli_epi32(one, 2)), 18));
    return _mm512_or_si512(r, _mm512_slli_epi32(_mm512_and_si512(h, _mm512_slli_epi32(one, 3)), 25));
}

/* Writes one tile block: the 8 weight vectors q, per half the scales s and the corrections
 * -128 * sum(w) (for `whole` blocks both halves' sums in the first), and the offsets o, o1;
 * lanes outside `rows` get zero scales and offsets. */
static inline __attribute__((always_inline)) void store_tile_block(uint8_t *tb, const __m512i q[8], __m512 s0, __m512 s1,
                                                                   __m512 o, __m512 o1, __mmask16 rows, int whole) {
    /* Per-row sums of the signed weights of each half: vpdpbusd with unsigned ones. */
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    for (int kq = 0; kq < 8; kq++) {
        _mm512_storeu_si512(tb + 64 * kq, q[kq]);
        if (kq < 4) sum0 = _mm512_dpbusd_epi32(sum0, ones, q[kq]);
        else sum1 = _mm512_dpbusd_epi32(sum1, ones, q[kq]);
    }
    const __m512i m128 = _mm512_set1_epi32(-128);
    _mm512_storeu_ps((float *)(tb + T_S0), _mm512_maskz_mov_ps(rows, s0));
    _mm512_storeu_si512(tb + T_C0, _mm512_mullo_epi32(whole ? _mm512_add_epi32(sum0, sum1) : sum0, m128));
    _mm512_storeu_ps((float *)(tb + T_S1), _mm512_maskz_mov_ps(rows, s1));
    _mm512_storeu_si512(tb + T_C1, _mm512_mullo_epi32(sum1, m128));
    _mm512_storeu_ps((float *)(tb + T_O), _mm512_maskz_mov_ps(rows, o));
    _mm512_storeu_ps((float *)(tb + T_O1), _mm512_maskz_mov_ps(rows, o1));
}

/* Unpacks blocks [b0, b1) (32 columns each) of rows [n0, n0 + nr) (nr <= 16) of W into the
 * tile, block b at tile block b - b0; missing rows are zero. The 16 rows are read together with
 * gathers: lane n of a gathered vector holds 4 bytes of row n. */
static void pack_tile(int format, const uint8_t *w, size_t rb, long n0, int nr, long b0, long b1, uint8_t *tile) {
    const int whole = block_mode(format) == WHOLE || block_mode(format) == WHOLE_NO_OFFSET;
    const __mmask16 rows = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    const __m512i rowoff = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32((int)rb));
    const uint8_t *base = w + (size_t)n0 * rb;
    const __m512i zero = _mm512_setzero_si512(), low4 = _mm512_set1_epi8(0x0F);
    const __m512i iq4 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)luhd_iq4_values));
#define GATHER(OFF) _mm512_mask_i32gather_epi32(zero, rows, _mm512_add_epi32(rowoff, _mm512_set1_epi32((int)(OFF))), base, 1)
    for (long b = b0; b < b1; b++) {
        uint8_t *tb = tile + (size_t)(b - b0) * TILE_BLOCK_BYTES;
        __m512i q[8];
        __m512 s0, s1, o = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
        if (format == LUHD_QF_Q2_K || format == LUHD_QF_IQ4_XS) {
            /* Row n's block in row n of wt (32 bytes each), then gathered by columns of 4. */
            int8_t wt[16][32] __attribute__((aligned(64)));
            float sh[2][16], oh[2][16];
            memset(wt, 0, sizeof wt);
            memset(sh, 0, sizeof sh);
            memset(oh, 0, sizeof oh);
            for (int n = 0; n < nr; n++) {
                float sn[2], on[2];
                block_ints(format, base + (size_t)n * rb, b, wt[n], sn, on);
                sh[0][n] = sn[0], sh[1][n] = sn[1], oh[0][n] = on[0], oh[1][n] = on[1];
            }
            const __m512i byrow = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                     _mm512_set1_epi32(32));
            for (int kq = 0; kq < 8; kq++)
                q[kq] = _mm512_i32gather_epi32(_mm512_add_epi32(byrow, _mm512_set1_epi32(4 * kq)), wt, 1);
            s0 = _mm512_loadu_ps(sh[0]);
            s1 = _mm512_loadu_ps(sh[1]);
            o = _mm512_loadu_ps(oh[0]);
            o1 = _mm512_loadu_ps(oh[1]);
        } else if (format == LUHD_QF_Q8_0) {
            for (int kq = 0; kq < 8; kq++) q[kq] = GATHER(34 * b + 2 + 4 * kq);
            s0 = s1 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(GATHER(34 * b)));
        } else {
            /* Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL: 16 nibble bytes at qs (element j low, j + 16 high),
             * Q5's fifth bits in the u32 before them, f16 d (and m) at the start. */
            const int q5 = format == LUHD_QF_Q5_0 || format == LUHD_QF_Q5_1;
            const int qs = format == LUHD_QF_Q4_0 || format == LUHD_QF_IQ4_NL ? 2 : format == LUHD_QF_Q5_1 ? 8 : format == LUHD_QF_Q4_1 ? 4 : 6;
            const long at = (long)luhd_quant_block_bytes(format) * b;
            const __m512i dm = GATHER(at);   /* d in the low 16 bits, m (Q4_1, Q5_1) in the high 16 */
            const __m512i qh = q5 ? GATHER(at + qs - 4) : zero;
            for (int kq = 0; kq < 4; kq++) {
                const __m512i v = GATHER(at + qs + 4 * kq);
                __m512i lo = _mm512_and_si512(v, low4), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), low4);
                if (q5) {
                    lo = _mm512_or_si512(lo, bit4_spread(_mm512_srli_epi32(qh, 4 * kq)));
                    hi = _mm512_or_si512(hi, bit4_spread(_mm512_srli_epi32(qh, 16 + 4 * kq)));
                }
                if (format == LUHD_QF_IQ4_NL) {
                    lo = _mm512_shuffle_epi8(iq4, lo);
                    hi = _mm512_shuffle_epi8(iq4, hi);
                } else if (format == LUHD_QF_Q4_0) {
                    lo = _mm512_sub_epi8(lo, _mm512_set1_epi8(8));
                    hi = _mm512_sub_epi8(hi, _mm512_set1_epi8(8));
                }
                q[kq] = lo;
                q[kq + 4] = hi;
            }
            s0 = s1 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
            if (format == LUHD_QF_Q4_1 || format == LUHD_QF_Q5_1)
                o = _mm512_sub_ps(o, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16))));
            else if (format != LUHD_QF_IQ4_NL && format != LUHD_QF_Q4_0)
                o = _mm512_mul_ps(s0, _mm512_set1_ps(16.0f));
        }
        store_tile_block(tb, q, s0, s1, o, o1, rows, whole);
    }
#undef GATHER
}

/* pack_tile for Q8_0 and Q4_0 reading the row-interleaved copy (quant_repack.c) instead of the
 * stored rows: the same values in the same tile (so the same bits of every product), gathered
 * from their places in the copy. n0 must be a multiple of 4 (whole row blocks): row n0 + n is
 * row n % 4 of the row block starting n0 + n - n % 4 rows after n0, and block b of it lies in
 * group b / 8 of that row block (4 rows x G bytes per group, row j's G bytes at j G: 16 bytes of
 * the 8 blocks' f16 scales, then the quants as 64-byte operands, 32-bit lane b % 8 + 8 h of an
 * operand holding 4 bytes of block b). */
static void pack_tile_repacked(int format, const uint8_t *w, size_t rb, long n0, int nr, long b0, long b1, uint8_t *tile) {
    const int q8 = format == LUHD_QF_Q8_0;
    const int G = q8 ? 272 : 144;
    const __mmask16 rows = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i rowoff = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_srli_epi32(lane, 2), _mm512_set1_epi32(4 * (int)rb)),
                                            _mm512_mullo_epi32(_mm512_and_si512(lane, _mm512_set1_epi32(3)), _mm512_set1_epi32(G)));
    const uint8_t *base = w + (size_t)n0 * rb;
    const __m512i zero = _mm512_setzero_si512(), low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
#define GATHER(OFF) _mm512_mask_i32gather_epi32(zero, rows, _mm512_add_epi32(rowoff, _mm512_set1_epi32((int)(OFF))), base, 1)
    for (long b = b0; b < b1; b++) {
        uint8_t *tb = tile + (size_t)(b - b0) * TILE_BLOCK_BYTES;
        const long grp = (b / 8) * 4 * G;
        const int j = (int)(b % 8);
        __m512i q[8];
        if (q8) {
            /* Bytes 4 kq .. 4 kq + 3 of the block: operand k with g8_base(k) + 4 h = 4 kq. */
            static const int operand[8] = {0, 0, 2, 2, 1, 1, 3, 3};
            for (int kq = 0; kq < 8; kq++) q[kq] = GATHER(grp + 16 + 64 * operand[kq] + 4 * (j + 8 * (kq & 1)));
        } else {
            /* Nibble bytes 4 kq .. 4 kq + 3: the first 64 bytes hold bytes 0-7, the second 8-15. */
            for (int kq = 0; kq < 4; kq++) {
                const __m512i v = GATHER(grp + 16 + 64 * (kq >> 1) + 4 * (j + 8 * (kq & 1)));
                q[kq] = _mm512_sub_epi8(_mm512_and_si512(v, low4), eight);
                q[kq + 4] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi32(v, 4), low4), eight);
            }
        }
        const __m512 s = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(GATHER(grp + 2 * j)));
        store_tile_block(tb, q, s, s, _mm512_setzero_ps(), _mm512_setzero_ps(), rows, 1);
    }
#undef GATHER
}

/* MR rows of x against one packed tile holding blocks [b0, b1). The two halves of each block
 * are summed in two int32 accumulators per row (two shorter chains of vpdpbusd; the integer sums
 * are exact, so adding them gives the block's sum). MODE (block_mode): with split scales the
 * halves are then scaled separately; offsets are applied
 * per block (WHOLE), per half (SPLIT_SCALES_OFFSETS) or not at all (WHOLE_NO_OFFSET). The sums start from 0, or with `accumulate` from y's values (the sums of the blocks
 * before b0 stored there, so that a product in column ranges adds the blocks in the same order). */
static inline __attribute__((always_inline)) void tile_rows(const uint8_t *tile, long b0, long b1, const uint8_t *xbuf,
                                                            size_t xstride, long cols, long i0, int mr, int mode,
                                                            float *y, long ldy, long n0, __mmask16 mask, int accumulate) {
    const long nb = cols / 32;
    __m512 out[6];
    for (int i = 0; i < 6; i++) out[i] = _mm512_setzero_ps();
    if (accumulate)
        for (int i = 0; i < mr; i++) out[i] = _mm512_maskz_loadu_ps(mask, y + (i0 + i) * ldy + n0);
    const int split = mode == SPLIT_SCALES_OFFSETS;
    for (long b = b0; b < b1; b++) {
        const uint8_t *tb = tile + (size_t)(b - b0) * TILE_BLOCK_BYTES;
        __m512i acc[6], acc1[6];
        if (split) {
            const __m512i c0 = _mm512_loadu_si512(tb + T_C0), c1 = _mm512_loadu_si512(tb + T_C1);
            for (int i = 0; i < mr; i++) { acc[i] = c0; acc1[i] = c1; }
        } else {
            const __m512i c = _mm512_loadu_si512(tb + T_C0);
            for (int i = 0; i < mr; i++) { acc[i] = c; acc1[i] = _mm512_setzero_si512(); }
        }
        for (int kq = 0; kq < 8; kq++) {
            const __m512i wv = _mm512_loadu_si512(tb + 64 * kq);
            for (int i = 0; i < mr; i++) {
                int32_t xw;
                memcpy(&xw, xbuf + (size_t)(i0 + i) * xstride + 32 * b + 4 * kq, 4);
                if (kq >= 4) acc1[i] = _mm512_dpbusd_epi32(acc1[i], _mm512_set1_epi32(xw), wv);
                else acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(xw), wv);
            }
        }
        const __m512 s0 = _mm512_loadu_ps((const float *)(tb + T_S0)), o = _mm512_loadu_ps((const float *)(tb + T_O));
        for (int i = 0; i < mr; i++) {
            const float *dxs = (const float *)(xbuf + (size_t)(i0 + i) * xstride + cols);
            const __m512 dx = _mm512_set1_ps(dxs[b]);
            if (!split) acc[i] = _mm512_add_epi32(acc[i], acc1[i]);
            out[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i]), _mm512_mul_ps(s0, dx), out[i]);
            if (split) {
                const __m512 s1 = _mm512_loadu_ps((const float *)(tb + T_S1));
                out[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc1[i]), _mm512_mul_ps(s1, dx), out[i]);
                if (mode == SPLIT_SCALES_OFFSETS) {
                    const float *sx16 = dxs + 2 * nb;
                    out[i] = _mm512_fnmadd_ps(o, _mm512_set1_ps(sx16[2 * b]), out[i]);
                    out[i] = _mm512_fnmadd_ps(_mm512_loadu_ps((const float *)(tb + T_O1)), _mm512_set1_ps(sx16[2 * b + 1]), out[i]);
                }
            } else if (mode == WHOLE) {
                out[i] = _mm512_fnmadd_ps(o, _mm512_set1_ps(dxs[nb + b]), out[i]);
            }
        }
    }
    for (int i = 0; i < mr; i++) _mm512_mask_storeu_ps(y + (i0 + i) * ldy + n0, mask, out[i]);
}

/* MR rows of x against two packed tiles (32 weight rows: tile A at `tile`, tile B `tstride`
 * bytes after it), blocks [b0, b1): each broadcast of 4 bytes of x feeds two vpdpbusd, and x is
 * streamed once per 32 weight rows instead of per 16. Every output is computed as tile_rows
 * computes it (the same integer block sums, the same float operations in the same order), so
 * the results are the same bits. */
static inline __attribute__((always_inline)) void tile_rows2(const uint8_t *tile, size_t tstride, long b0, long b1,
                                                             const uint8_t *xbuf, size_t xstride, long cols, long i0,
                                                             int mr, int mode, float *y, long ldy, long n0,
                                                             __mmask16 maskb, int accumulate) {
    const long nb = cols / 32;
    __m512 out[6][2];
    for (int i = 0; i < 6; i++) out[i][0] = out[i][1] = _mm512_setzero_ps();
    if (accumulate)
        for (int i = 0; i < mr; i++) {
            out[i][0] = _mm512_loadu_ps(y + (i0 + i) * ldy + n0);
            out[i][1] = _mm512_maskz_loadu_ps(maskb, y + (i0 + i) * ldy + n0 + 16);
        }
    const int split = mode == SPLIT_SCALES_OFFSETS;
    const uint8_t *xr[6];
    for (int i = 0; i < mr; i++) xr[i] = xbuf + (size_t)(i0 + i) * xstride;
    for (long b = b0; b < b1; b++) {
        const uint8_t *ta = tile + (size_t)(b - b0) * TILE_BLOCK_BYTES, *tb = ta + tstride;
        __m512i acc[6][2], acc1[6][2];
        {
            const __m512i ca = _mm512_loadu_si512(ta + T_C0), cb = _mm512_loadu_si512(tb + T_C0);
            for (int i = 0; i < mr; i++) { acc[i][0] = ca; acc[i][1] = cb; }
            if (split) {
                const __m512i da = _mm512_loadu_si512(ta + T_C1), db = _mm512_loadu_si512(tb + T_C1);
                for (int i = 0; i < mr; i++) { acc1[i][0] = da; acc1[i][1] = db; }
            }
        }
        for (int kq = 0; kq < 8; kq++) {
            const __m512i wa = _mm512_loadu_si512(ta + 64 * kq), wb = _mm512_loadu_si512(tb + 64 * kq);
            for (int i = 0; i < mr; i++) {
                int32_t xw;
                memcpy(&xw, xr[i] + 32 * b + 4 * kq, 4);
                const __m512i xv = _mm512_set1_epi32(xw);
                if (split && kq >= 4) {
                    acc1[i][0] = _mm512_dpbusd_epi32(acc1[i][0], xv, wa);
                    acc1[i][1] = _mm512_dpbusd_epi32(acc1[i][1], xv, wb);
                } else {
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], xv, wa);
                    acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], xv, wb);
                }
            }
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *t = h ? tb : ta;
            const __m512 s0 = _mm512_loadu_ps((const float *)(t + T_S0)), o = _mm512_loadu_ps((const float *)(t + T_O));
            for (int i = 0; i < mr; i++) {
                const float *dxs = (const float *)(xr[i] + cols);
                const __m512 dx = _mm512_set1_ps(dxs[b]);
                out[i][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][h]), _mm512_mul_ps(s0, dx), out[i][h]);
                if (split) {
                    const __m512 s1 = _mm512_loadu_ps((const float *)(t + T_S1));
                    out[i][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc1[i][h]), _mm512_mul_ps(s1, dx), out[i][h]);
                    if (mode == SPLIT_SCALES_OFFSETS) {
                        const float *sx16 = dxs + 2 * nb;
                        out[i][h] = _mm512_fnmadd_ps(o, _mm512_set1_ps(sx16[2 * b]), out[i][h]);
                        out[i][h] = _mm512_fnmadd_ps(_mm512_loadu_ps((const float *)(t + T_O1)), _mm512_set1_ps(sx16[2 * b + 1]),
                                                     out[i][h]);
                    }
                } else if (mode == WHOLE) {
                    out[i][h] = _mm512_fnmadd_ps(o, _mm512_set1_ps(dxs[nb + b]), out[i][h]);
                }
            }
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(y + (i0 + i) * ldy + n0, out[i][0]);
        _mm512_mask_storeu_ps(y + (i0 + i) * ldy + n0 + 16, maskb, out[i][1]);
    }
}

/* luhd_quant_gemm_tile_columns, the weights unpacked from the stored rows or (`repacked`) from
 * the row-interleaved copy. */
static void tile_columns(int format, int repacked, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                         long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate) {
    if (!luhd_quant_gemm_supports(format) || nr <= 0 || m <= 0 || k0 < 0 || k1 > cols || k0 >= k1 || k0 % 32 != 0
        || k1 % 32 != 0)
        return;
    if (nr > 32) nr = 32;
    const long b0 = k0 / 32, b1 = k1 / 32;
    uint8_t *t = (uint8_t *)tile;
    const size_t tstride = (size_t)(b1 - b0) * TILE_BLOCK_BYTES;
    void (*pack)(int, const uint8_t *, size_t, long, int, long, long, uint8_t *) = repacked ? pack_tile_repacked : pack_tile;
    pack(format, (const uint8_t *)w, row_bytes, n0, nr > 16 ? 16 : nr, b0, b1, t);
    const uint8_t *xb = (const uint8_t *)xbuf;
    const size_t xs = luhd_quant_gemm_x_bytes(cols, 1);
    const int mode = block_mode(format), acc = accumulate != 0;
    long i = 0;
    if (nr > 16) {
        pack(format, (const uint8_t *)w, row_bytes, n0 + 16, nr - 16, b0, b1, t + tstride);
        const __mmask16 maskb = (__mmask16)((nr >= 32) ? 0xFFFF : ((1u << (nr - 16)) - 1));
#define ROWS2(MR)                                                                                                    \
    if (mode == SPLIT_SCALES_OFFSETS)                                                                               \
        tile_rows2(t, tstride, b0, b1, xb, xs, cols, i, MR, SPLIT_SCALES_OFFSETS, y, ldy, n0, maskb, acc);          \
    else if (mode == WHOLE_NO_OFFSET)                                                                               \
        tile_rows2(t, tstride, b0, b1, xb, xs, cols, i, MR, WHOLE_NO_OFFSET, y, ldy, n0, maskb, acc);               \
    else tile_rows2(t, tstride, b0, b1, xb, xs, cols, i, MR, WHOLE, y, ldy, n0, maskb, acc);
        for (; i + ROWS_32 <= m; i += ROWS_32) {
            for (long j = i + ROWS_32; j < i + 2 * ROWS_32 && j < m; j++) _mm_prefetch((const char *)(y + j * ldy + n0), _MM_HINT_T0);
            ROWS2(ROWS_32)
        }
        switch (m - i) {
        case 3: ROWS2(3) break;
        case 2: ROWS2(2) break;
        case 1: ROWS2(1) break;
        default: break;
        }
#undef ROWS2
        return;
    }
    const __mmask16 mask = (__mmask16)((nr >= 16) ? 0xFFFF : ((1u << nr) - 1));
#define ROWS(MR)                                                                                                     \
    if (mode == SPLIT_SCALES_OFFSETS)                                                                                \
        tile_rows(t, b0, b1, xb, xs, cols, i, MR, SPLIT_SCALES_OFFSETS, y, ldy, n0, mask, acc);                      \
    else if (mode == WHOLE_NO_OFFSET) tile_rows(t, b0, b1, xb, xs, cols, i, MR, WHOLE_NO_OFFSET, y, ldy, n0, mask, acc); \
    else tile_rows(t, b0, b1, xb, xs, cols, i, MR, WHOLE, y, ldy, n0, mask, acc);
    for (; i + 6 <= m; i += 6) {
        /* The next rows' outputs (read back when accumulating, written in any case): asked for
         * early, as they sit in rows ldy floats apart that no prefetcher follows. */
        for (long j = i + 6; j < i + 12 && j < m; j++) _mm_prefetch((const char *)(y + j * ldy + n0), _MM_HINT_T0);
        ROWS(6)
    }
    switch (m - i) {
    case 5: ROWS(5) break;
    case 4: ROWS(4) break;
    case 3: ROWS(3) break;
    case 2: ROWS(2) break;
    case 1: ROWS(1) break;
    default: break;
    }
#undef ROWS
}

void luhd_quant_gemm_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                  long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate) {
    tile_columns(format, 0, w, row_bytes, n0, nr, cols, k0, k1, xbuf, m, tile, y, ldy, accumulate);
}

int luhd_quant_gemm_repacked_supports(int format) { return format == LUHD_QF_Q8_0 || format == LUHD_QF_Q4_0; }

void luhd_quant_gemm_tile_columns_repacked(int format, const void *repacked, size_t row_bytes, long n0, int nr, long cols,
                                           long k0, long k1, const void *xbuf, long m, void *tile, float *y, long ldy,
                                           int accumulate) {
    if (!luhd_quant_gemm_repacked_supports(format) || n0 % 4 != 0 || cols % 256 != 0) return;
    tile_columns(format, 1, repacked, row_bytes, n0, nr, cols, k0, k1, xbuf, m, tile, y, ldy, accumulate);
}

void luhd_quant_gemm_tile(int format, const void *w, size_t row_bytes, long n0, int nr, long cols,
                          const void *xbuf, long m, void *tile, float *y, long ldy) {
    luhd_quant_gemm_tile_columns(format, w, row_bytes, n0, nr, cols, 0, cols / 32 * 32, xbuf, m, tile, y, ldy, 0);
}
#pragma clang attribute pop
