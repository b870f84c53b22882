/* Int8 matrix products for prefill with AVX2 (declared in quant_kernels.h): y[i][n] =
 * sum_k W[n][k] * x[i][k] for many rows of x, for the CPUs without AVX-512 VNNI (AMD Zen 2/3,
 * Intel client cores), with the numeric contract of the VNNI product (quant_gemm_vnni.c): x
 * quantized per block of 32 (dx = max|x| / 127, round to nearest even, clamped to +-127; a block
 * holding a non-finite value gets zeros and dx = NaN), integer dot products exact in int32,
 * scales applied per block in f32 with the VNNI product's operations:
 *   y[i][n] = sum_b fma(S[b][n], s[b][n] dx[i][b], ...) - o[b][n] sx[i][b]
 * with S = sum_k w xq the exact integer block sum, s the weight scale and o the weight offset
 * (o = 0 for Q8_0, Q4_0, IQ4_NL and IQ4_XS; -m for Q4_1 and Q5_1; 16 d for Q5_0) and sx = dx sum(xq).
 * IQ4_XS (super-blocks of 256) is taken as 8 blocks of 32, each with the scale the VNNI
 * product gives it, s = d * (its 6-bit scale - 32), exact in f32.
 *
 * AVX2 has no vpdpbusd; the integer sums take vpmaddubsw (u8 x s8 pairs added to int16, with
 * signed saturation) and vpmaddwd with ones (int16 pairs added to int32), as llama.cpp's AVX2
 * dot products do. x is stored signed (xq in -127..127), and vpmaddubsw never saturates:
 *  - signed weights (Q8_0: -128..127, IQ4_NL and IQ4_XS: -127..113): the "sign trick", |w| (0..128) as the
 *    unsigned operand and xq with w's sign (vpsignb: -127..127, 0 where w = 0) as the signed
 *    one, so each product is w xq; a pair sum is at most 2 * 128 * 127 = 32512 <= 32767. Each
 *    4-byte group goes to int32 at once (vpmaddwd), as two pair sums could reach 65024.
 *  - unsigned weights (the nibbles before their offset: Q4_0 and Q4_1 0..15, Q5_0 and Q5_1
 *    0..31) times signed xq: a pair sum is at most 2 * 15 * 127 = 3810 (Q4) or 2 * 31 * 127 =
 *    7874 (Q5), so the int16 lanes sum the pairs of 8 groups (the whole block: 8 * 3810 = 30480)
 *    or 4 groups (half a block: 4 * 7874 = 31496) before one vpmaddwd widens them; Q4_0's -8 is
 *    applied to the int32 sum as -8 sum(xq) (its block sum stored with x), so S is the integer
 *    the VNNI product computes. Q4_1, Q5_0, Q5_1 keep their offsets in f32 as there.
 *
 * Tiles hold 8 weight rows per 256-bit vector (a "panel"; 4 panels = 32 rows a tile): per block
 * and panel 8 vectors of the weights (lane n: 4 consecutive weights of row n, the layout of
 * vpdpbusd), for signed formats 8 more of their magnitudes, then 8 f32 scales s and 8 offsets o.
 * The product takes 2 panels (16 rows) and MR = 6 rows of x at a time, over ranges of the tile
 * that stay in L2 (gemm_avx2_tile_passes, quant_gemm_avx2_common.h). Results are the same bits
 * whatever the tiling (nr, n0), the column ranges and the rows of x taken together: each output
 * is its blocks' f32 operations in block order. */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#include "quant_gemm_avx2_common.h"

/* Bytes of one panel's block in a tile, and the offsets inside it. */
#define PB 576
#define P_ABS 256
#define P_S 512
#define P_O 544
/* Panels (of 8 weight rows) a tile holds, and rows of x per step of the product. */
#define PANELS 4
/* 12 int32 (or int16) and 12 f32 accumulators for 16 weight rows: measured on Zen 3 (one
 * thread, CPU time) against 4 rows, the same for Q8_0 (~100 GOP/s in cache) and +20 % for Q4_0
 * (~150); 8 rows no faster. */
#define MR 6

/* How a format's weights are multiplied (see the top of the file). */
enum { K_SIGNED = 0, K_Q4_0 = 1, K_Q4_1 = 2, K_Q5 = 3 };

static int weight_kind(int format) {
    switch (format) {
    case LUHD_QF_Q8_0: case LUHD_QF_IQ4_NL: case LUHD_QF_IQ4_XS: return K_SIGNED;
    case LUHD_QF_Q4_0: return K_Q4_0;
    case LUHD_QF_Q4_1: return K_Q4_1;
    default: return K_Q5;
    }
}

int luhd_quant_gemm_avx2_supports(int format) {
    switch (format) {
    case LUHD_QF_Q8_0: case LUHD_QF_Q4_0: case LUHD_QF_Q4_1: case LUHD_QF_Q5_0: case LUHD_QF_Q5_1: case LUHD_QF_IQ4_NL:
    case LUHD_QF_IQ4_XS:
        return 1;
    default: return 0;
    }
}

/* A row of prepared x: cols bytes xq (int8), then f32 dx[nb], f32 sx[nb] = dx * sum(xq), int32
 * sum(xq)[nb]; rounded up to 64 bytes. */
size_t luhd_quant_gemm_avx2_x_bytes(long cols, long m) {
    if (cols <= 0 || m <= 0) return 0;
    const size_t row = (size_t)cols + (size_t)(cols / 32) * 12;
    return (row + 63) / 64 * 64 * (size_t)m;
}

size_t luhd_quant_gemm_avx2_tile_bytes(long cols) { return cols <= 0 ? 0 : (size_t)PANELS * (size_t)(cols / 32) * PB; }

/* Per block: max|x| over the 32 values and whether all are finite; dx = max / 127 (NaN for a
 * non-finite block, which stores zeros), xq = x * (1 / dx) rounded to nearest even (vroundps in
 * the default rounding mode) and clamped to +-127 (0 when dx = 0): the values of
 * luhd_quant_gemm_prepare_x, stored signed. */
void luhd_quant_gemm_avx2_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf) {
    const size_t stride = luhd_quant_gemm_avx2_x_bytes(cols, 1);
    const long nb = cols / 32;
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    for (long i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)xbuf + (size_t)i * stride;
        float *dxs = (float *)(row + cols), *sxs = dxs + nb;
        int32_t *sums = (int32_t *)(sxs + nb);
        for (long b = 0; b < nb; b++) {
            const float *xb = x + i * ldx + 32 * b;
            __m256 v[4], amax = _mm256_setzero_ps();
            int finite = 1;
            for (int j = 0; j < 4; j++) {
                v[j] = _mm256_loadu_ps(xb + 8 * j);
                const __m256 a = _mm256_and_ps(v[j], magnitude);
                finite &= _mm256_movemask_ps(_mm256_cmp_ps(a, inf, _CMP_LT_OQ)) == 0xFF;
                amax = _mm256_max_ps(amax, a);
            }
            if (!finite) {
                memset(row + 32 * b, 0, 32);
                dxs[b] = sxs[b] = NAN;
                sums[b] = 0;
                continue;
            }
            const float dx = gemm_avx2_hmax8(amax) / 127.0f;
            const __m256 id = _mm256_set1_ps(dx != 0.0f ? 1.0f / dx : 0.0f);
            __m256i q[4];
            _mm256_storeu_si256((__m256i *)(row + 32 * b), gemm_avx2_quantize32(v, id, q));
            const int sum = gemm_avx2_hsum8(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            dxs[b] = dx;
            sxs[b] = dx * (float)sum;
            sums[b] = sum;
        }
    }
}

/* Byte j of the result: 0x10 when bit j of the 32 bits at p is set, else 0 (Q5's fifth bits). */
static inline __m256i fifth_bits(const uint8_t *p) {
    uint32_t h;
    memcpy(&h, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                 0x0101010101010101, 0x0000000000000000));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFE)),
                                          _mm256_set1_epi64x(-1));
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* Block b (32 weights) of the row at `row`: its integer weights as the product multiplies them
 * (signed for K_SIGNED, the unsigned nibbles otherwise), its scale s and offset o. IQ4_XS's
 * block b is sub-block b % 8 of super-block b / 8: 16 bytes of nibbles at 8 + 16 (b % 8), laid
 * out as IQ4_NL's. */
static inline __m256i unpack_block(int format, const uint8_t *row, long b, float *s, float *o) {
    *o = 0.0f;
    const uint8_t *blk = row, *nibbles;
    if (format == LUHD_QF_IQ4_XS) {
        const uint8_t *sb = row + (size_t)(b / 8) * 136;
        *s = gemm_avx2_half(sb) * (float)luhd_iq4xs_scale(sb, (int)(b % 8));
        nibbles = sb + 8 + 16 * (b % 8);
    } else {
        blk = row + (size_t)b * luhd_quant_block_bytes(format);
        *s = gemm_avx2_half(blk);
        if (format == LUHD_QF_Q8_0) return _mm256_loadu_si256((const __m256i *)(blk + 2));
        nibbles = blk + (format == LUHD_QF_Q4_0 || format == LUHD_QF_IQ4_NL ? 2 : format == LUHD_QF_Q4_1 ? 4
                         : format == LUHD_QF_Q5_0 ? 6 : 8);
    }
    const __m128i n = _mm_loadu_si128((const __m128i *)nibbles);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(n, low4), hi = _mm_and_si128(_mm_srli_epi16(n, 4), low4);
    if (format == LUHD_QF_IQ4_NL || format == LUHD_QF_IQ4_XS) {
        const __m128i table = _mm_loadu_si128((const __m128i *)luhd_iq4_values);
        lo = _mm_shuffle_epi8(table, lo);
        hi = _mm_shuffle_epi8(table, hi);
    }
    __m256i w = _mm256_set_m128i(hi, lo);
    if (format == LUHD_QF_Q5_0 || format == LUHD_QF_Q5_1) w = _mm256_or_si256(w, fifth_bits(nibbles - 4));
    if (format == LUHD_QF_Q4_1 || format == LUHD_QF_Q5_1) *o = 0.0f - gemm_avx2_half(blk + 2);
    else if (format == LUHD_QF_Q5_0) *o = *s * 16.0f;
    return w;
}

/* Unpacks blocks [b0, b1) of rows [n0, n0 + nr) (nr <= 32) of W into the tile, block b at tile
 * block b - b0 (PANELS * PB bytes each); rows past nr get zero weights, scales and offsets. */
static void pack_tile(int format, const uint8_t *w, size_t rb, long n0, int nr, long b0, long b1, uint8_t *tile) {
    const int sign = weight_kind(format) == K_SIGNED;
    const int panels = (nr + 7) / 8;
    for (long b = b0; b < b1; b++) {
        for (int p = 0; p < panels; p++) {
            uint8_t *pb = tile + (size_t)(b - b0) * PANELS * PB + (size_t)p * PB;
            __m256i r[8];
            float s[8], o[8];
            for (int n = 0; n < 8; n++) {
                if (8 * p + n < nr) {
                    r[n] = unpack_block(format, w + (size_t)(n0 + 8 * p + n) * rb, b, &s[n], &o[n]);
                } else {
                    r[n] = _mm256_setzero_si256();
                    s[n] = o[n] = 0.0f;
                }
            }
            /* Vector g, lane n = group g of row n. */
            __m256i c[8];
            gemm_avx2_transpose8(r, c);
            for (int g = 0; g < 8; g++) {
                _mm256_storeu_si256((__m256i *)(pb + 32 * g), c[g]);
                if (sign) _mm256_storeu_si256((__m256i *)(pb + P_ABS + 32 * g), _mm256_abs_epi8(c[g]));
            }
            _mm256_storeu_ps((float *)(pb + P_S), _mm256_loadu_ps(s));
            _mm256_storeu_ps((float *)(pb + P_O), _mm256_loadu_ps(o));
        }
    }
}

/* rows (1..MR) rows of x from i0 against np (1 or 2) panels of the tile starting at panel p0
 * (outputs n0 + 8 (p0 + j) + lane), blocks [b0, b1), the last panel's lanes limited by `last`
 * (a vpmaskmov mask). KIND: weight_kind. Outputs start from 0, or with `accumulate` from y's
 * values (the sums of the blocks before b0). */
static inline __attribute__((always_inline)) void panel_rows(const uint8_t *tile, int p0, int np, long b0, long b1,
                                                             const uint8_t *xbuf, size_t xs, long cols, long i0,
                                                             int rows, int kind, float *y, long ldy, long n0,
                                                             __m256i last, int accumulate) {
    const long nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i mask[2];
    __m256 out[MR][2];
    const uint8_t *xr[MR];
    gemm_avx2_step_begin(xbuf, xs, i0, rows, np, p0, y, ldy, n0, last, accumulate, xr, mask, out);
    for (long b = b0; b < b1; b++) {
        const uint8_t *pb = tile + (size_t)(b - b0) * PANELS * PB + (size_t)p0 * PB;
        __m256i acc[MR][2];
        if (kind == K_SIGNED) {
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < np; j++) acc[i][j] = _mm256_setzero_si256();
            for (int g = 0; g < 8; g++) {
                __m256i wv[2], av[2];
                for (int j = 0; j < np; j++) {
                    wv[j] = _mm256_loadu_si256((const __m256i *)(pb + j * PB + 32 * g));
                    av[j] = _mm256_loadu_si256((const __m256i *)(pb + j * PB + P_ABS + 32 * g));
                }
                for (int i = 0; i < rows; i++) {
                    int32_t x4;
                    memcpy(&x4, xr[i] + 32 * b + 4 * g, 4);
                    const __m256i xv = _mm256_set1_epi32(x4);
                    for (int j = 0; j < np; j++) {
                        const __m256i p = _mm256_maddubs_epi16(av[j], _mm256_sign_epi8(xv, wv[j]));
                        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(p, ones));
                    }
                }
            }
        } else {
            const int steps = kind == K_Q5 ? 4 : 8;
            for (int h = 0; h < 8 / steps; h++) {
                __m256i a16[MR][2];
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < np; j++) a16[i][j] = _mm256_setzero_si256();
                for (int g = steps * h; g < steps * (h + 1); g++) {
                    __m256i wv[2];
                    for (int j = 0; j < np; j++) wv[j] = _mm256_loadu_si256((const __m256i *)(pb + j * PB + 32 * g));
                    for (int i = 0; i < rows; i++) {
                        int32_t x4;
                        memcpy(&x4, xr[i] + 32 * b + 4 * g, 4);
                        const __m256i xv = _mm256_set1_epi32(x4);
                        for (int j = 0; j < np; j++) a16[i][j] = _mm256_add_epi16(a16[i][j], _mm256_maddubs_epi16(wv[j], xv));
                    }
                }
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < np; j++) {
                        const __m256i s = _mm256_madd_epi16(a16[i][j], ones);
                        acc[i][j] = h == 0 ? s : _mm256_add_epi32(acc[i][j], s);
                    }
            }
            if (kind == K_Q4_0)
                for (int i = 0; i < rows; i++) {
                    const int32_t *sums = (const int32_t *)(xr[i] + cols + 8 * nb);
                    const __m256i c = _mm256_set1_epi32(8 * sums[b]);
                    for (int j = 0; j < np; j++) acc[i][j] = _mm256_sub_epi32(acc[i][j], c);
                }
        }
        for (int j = 0; j < np; j++) {
            const __m256 s = _mm256_loadu_ps((const float *)(pb + j * PB + P_S));
            const __m256 o = _mm256_loadu_ps((const float *)(pb + j * PB + P_O));
            for (int i = 0; i < rows; i++) {
                const float *dxs = (const float *)(xr[i] + cols);
                out[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i][j]), _mm256_mul_ps(s, _mm256_set1_ps(dxs[b])), out[i][j]);
                if (kind == K_Q4_1 || kind == K_Q5) out[i][j] = _mm256_fnmadd_ps(o, _mm256_set1_ps(dxs[nb + b]), out[i][j]);
            }
        }
    }
    gemm_avx2_step_end(out, mask, rows, np, p0, y, ldy, i0, n0);
}

GEMM_AVX2_DEFINE_PASS(pass_signed, panel_rows, K_SIGNED, MR)
GEMM_AVX2_DEFINE_PASS(pass_q4_0, panel_rows, K_Q4_0, MR)
GEMM_AVX2_DEFINE_PASS(pass_q4_1, panel_rows, K_Q4_1, MR)
GEMM_AVX2_DEFINE_PASS(pass_q5, panel_rows, K_Q5, MR)

void luhd_quant_gemm_avx2_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                       long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate) {
    if (!luhd_quant_gemm_avx2_supports(format) || nr <= 0 || m <= 0 || k0 < 0 || k1 > cols || k0 >= k1 || k0 % 32 != 0
        || k1 % 32 != 0 || cols % luhd_quant_block_elements(format) != 0)
        return;
    if (nr > 8 * PANELS) nr = 8 * PANELS;
    const long b0 = k0 / 32, b1 = k1 / 32;
    uint8_t *t = (uint8_t *)tile;
    pack_tile(format, (const uint8_t *)w, row_bytes, n0, nr, b0, b1, t);
    const int kind = weight_kind(format);
    const gemm_avx2_pass pass = kind == K_SIGNED ? pass_signed : kind == K_Q4_0 ? pass_q4_0 : kind == K_Q4_1 ? pass_q4_1 : pass_q5;
    gemm_avx2_tile_passes(pass, t, (size_t)PANELS * PB, nr, b0, b1, (const uint8_t *)xbuf, luhd_quant_gemm_avx2_x_bytes(cols, 1), cols,
                          m, y, ldy, n0, accumulate != 0);
}
#pragma clang attribute pop
