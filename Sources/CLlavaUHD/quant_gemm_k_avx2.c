/* Int8 matrix products for prefill with x quantized per super-block of 256, with AVX2
 * (declared in quant_kernels.h): y[i][n] = sum_k W[n][k] * x[i][k] for Q4_K, Q5_K, Q6_K, Q3_K
 * and Q2_K on the CPUs without AVX-512 VNNI; the AVX2 counterpart of quant_gemm_k_vnni.c, with
 * its numeric contract (which Q2_K, taken per block of 32 by the VNNI product, follows here with
 * Q4_K's epilogue): x quantized per 256 elements (dx = max|x| / 127, round to nearest even,
 * clamped to +-127; a super-block holding a non-finite value gets zeros and dx = NaN, so its
 * products are NaN), integer sums S and M exact in int32 whatever the tiling, the float epilogue
 * once per super-block with the VNNI kernel's operations:
 *   Q4_K, Q5_K: y = fma(fms(f32(S), d, f32(M) dmin), dx, y), S = sum_j sc_j sum_32 q xq,
 *               M = sum_j m_j X32_j (q the unsigned quants 0..15 / 0..31, sc and m 0..63);
 *   Q2_K:       the same epilogue with S = sum_h sc_h sum_16 q xq, M = sum_h m_h X16_h over the
 *               16 halves of 16 (q 0..3, sc and m the 4-bit scale and min, 0..15);
 *   Q6_K, Q3_K: y = fma(f32(S), d dx, y), S = sum_h sc_h sum_16 (q - o) xq
 *               = sum_h sc_h sum_16 q xq + sum_h (-o sc_h) X16_h
 *               (q unsigned 0..63 / 0..7, o = 32 / 4, sc int8 / -32..31),
 * X16 and X32 the int16 sums of xq per 16 and per 32. Results are W . x~ up to f32 rounding, x~
 * the per-256 int8 image of x, the same bits whatever the tiling (nr, n0), the column ranges and
 * the rows of x taken together.
 *
 * AVX2 has no vpdpbusd: vpmaddubsw multiplies the unsigned weights q (first operand) by the
 * signed xq (-127..127) and adds each pair into an int16 with signed saturation; then vpmaddwd
 * against the sub-block scale (int16, both halves of each 32-bit lane) widens a chunk of int16
 * sums and applies the scale in one instruction. No int16 lane can saturate: a lane sums 2 pairs
 * per group of 4 weights over a chunk of c groups, at most 2 c q_max 127:
 *   Q4_K  q <= 15, c = 8 (a sub-block of 32): 16 * 15 * 127 = 30480;
 *   Q5_K  q <= 31, c = 4 (half a sub-block):   8 * 31 * 127 = 31496;
 *   Q6_K  q <= 63, c = 2 (half a 16-half):     4 * 63 * 127 = 32004;
 *   Q3_K  q <= 7,  c = 4 (a 16-half):          8 *  7 * 127 =  7112;
 *   Q2_K  q <= 3,  c = 4 (a 16-half):          8 *  3 * 127 =  3048;
 * all <= 32767. vpmaddwd then gives 2 * 32004 * 128 at most per lane; |S| <= 16 * 16 * 127 *
 * (63 * 128 + 32 * 128) < 2^29, |M| <= 8 * 32 * 127 * 63 < 2^21, all exact in int32 (and
 * rounded once when converted to f32, as in the VNNI kernel). The per-sub-block sums, weights
 * times scales in int16 pairs, are vpmaddwd too: mins (0..63) times X32 (|X32| <= 4064), -o sc
 * (|.| <= 4096) times X16 (|X16| <= 2032). Q2_K's are smaller: a scaled chunk 2 * 3048 * 15 =
 * 91440 per lane, |S| <= 16 * 15 * 16 * 3 * 127 = 1463040 < 2^21 and |M| <= 16 * 15 * 2032 =
 * 487680 < 2^19, so both are exact in int32 and in f32 too.
 *
 * Tiles hold 8 weight rows per 256-bit vector (a panel; 4 panels = 32 rows), per super-block and
 * panel: 64 vectors of q (group g: lane n = the 4 quants 4g..4g+3 of row n), 16 of scales (one
 * per 16 or 32 quants: lane n = sc | sc << 16), 8 of int16 pairs for the sums of x (Q4_K, Q5_K:
 * m_2p | m_2p+1 << 16, 4 used; Q2_K: m_2p | m_2p+1 << 16 of its 16 halves; Q6_K, Q3_K:
 * -o sc_2p | -o sc_2p+1 << 16), 8 f32 d and 8 dmin.
 * The product takes 2 panels (16 rows) and 6 rows of x (Q6_K: 4) at a time, over ranges of the
 * tile that stay in L2 (gemm_avx2_tile_passes, quant_gemm_avx2_common.h). */
#include "quant_kernels.h"
#include "quant_blocks.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#include "quant_gemm_avx2_common.h"

/* Bytes of one panel's super-block in a tile, and the offsets inside it. */
#define KPB 2880
#define K_SC 2048
#define K_PAIR 2560
#define K_D 2816
#define K_DMIN 2848
/* Panels (of 8 weight rows) a tile holds, and rows of x per step of the product: MR, or
 * MR_Q6 for Q6_K, whose int32 sums are updated every 2 groups (12 of them and the weights of 2
 * groups do not fit the 16 registers). Measured on Zen 3, one thread, CPU time, 1024 rows of x,
 * 4096 and 11008 columns (BENCHMARKS.md notes:kgemm10): Q6_K 4 rows +11-15 % against 6; Q4_K 6
 * rows about +7 % against 4, 5 and 8 rows slower. */
#define PANELS 4
#define MR 6
#define MR_Q6 4

/* The formats' layouts in the product: scale segments of 8 groups of 4 quants with mins per 32
 * (Q4_K, Q5_K), of 4 groups with mins per 16 (Q2_K) or of 4 groups without mins (Q6_K, Q3_K),
 * and the groups a chunk of int16 sums takes (see the bounds above). */
enum { KIND_Q4_K = 0, KIND_Q5_K = 1, KIND_Q6_K = 2, KIND_Q3_K = 3, KIND_Q2_K = 4 };

static int k_kind(int format) {
    switch (format) {
    case LUHD_QF_Q4_K:
        return KIND_Q4_K;
    case LUHD_QF_Q5_K:
        return KIND_Q5_K;
    case LUHD_QF_Q6_K:
        return KIND_Q6_K;
    case LUHD_QF_Q2_K:
        return KIND_Q2_K;
    default:
        return KIND_Q3_K;
    }
}

int luhd_quant_gemm_k_avx2_supports(int format) {
    return format == LUHD_QF_Q4_K || format == LUHD_QF_Q6_K || format == LUHD_QF_Q5_K || format == LUHD_QF_Q3_K
           || format == LUHD_QF_Q2_K;
}

/* A row of prepared x: cols bytes xq (int8), then per super-block f32 dx[nsb], int16
 * X16[16 nsb], int16 X32[8 nsb]; rounded up to 64 bytes. */
size_t luhd_quant_gemm_k_avx2_x_bytes(long cols, long m) {
    if (cols <= 0 || m <= 0) return 0;
    const size_t row = (size_t)cols + (size_t)(cols / 256) * 52;
    return (row + 63) / 64 * 64 * (size_t)m;
}

size_t luhd_quant_gemm_k_avx2_tile_bytes(long cols) { return cols <= 0 ? 0 : (size_t)PANELS * (size_t)(cols / 256) * KPB; }

/* Per super-block: max|x| over its 256 values and whether all are finite; dx = max / 127 (NaN
 * for a non-finite super-block, which stores zeros), xq = x * (1 / dx) rounded to nearest even
 * and clamped to +-127 (0 when dx = 0), the values of luhd_quant_gemm_k_prepare_x, stored
 * signed, with the int16 sums per 16 and per 32. */
void luhd_quant_gemm_k_avx2_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf) {
    const size_t stride = luhd_quant_gemm_k_avx2_x_bytes(cols, 1);
    const long nsb = cols / 256;
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)), inf = _mm256_set1_ps(INFINITY);
    for (long i = 0; i < m; i++) {
        uint8_t *row = (uint8_t *)xbuf + (size_t)i * stride;
        float *dxs = (float *)(row + cols);
        int16_t *x16 = (int16_t *)(dxs + nsb), *x32 = x16 + 16 * nsb;
        for (long s = 0; s < nsb; s++) {
            const float *xs = x + i * ldx + 256 * s;
            __m256 amax = _mm256_setzero_ps();
            int finite = 1;
            for (int v = 0; v < 32; v++) {
                const __m256 a = _mm256_and_ps(_mm256_loadu_ps(xs + 8 * v), magnitude);
                finite &= _mm256_movemask_ps(_mm256_cmp_ps(a, inf, _CMP_LT_OQ)) == 0xFF;
                amax = _mm256_max_ps(amax, a);
            }
            if (!finite) {
                memset(row + 256 * s, 0, 256);
                memset(x16 + 16 * s, 0, 32);
                memset(x32 + 8 * s, 0, 16);
                dxs[s] = NAN;
                continue;
            }
            const float dx = gemm_avx2_hmax8(amax) / 127.0f;
            const __m256 id = _mm256_set1_ps(dx != 0.0f ? 1.0f / dx : 0.0f);
            for (int b = 0; b < 8; b++) {
                __m256 v[4];
                __m256i q[4];
                for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(xs + 32 * b + 8 * j);
                _mm256_storeu_si256((__m256i *)(row + 256 * s + 32 * b), gemm_avx2_quantize32(v, id, q));
                const int lo = gemm_avx2_hsum8(_mm256_add_epi32(q[0], q[1])), hi = gemm_avx2_hsum8(_mm256_add_epi32(q[2], q[3]));
                x16[16 * s + 2 * b] = (int16_t)lo;
                x16[16 * s + 2 * b + 1] = (int16_t)hi;
                x32[8 * s + b] = (int16_t)(lo + hi);
            }
            dxs[s] = dx;
        }
    }
}

/* One super-block (at p) of one row: its unsigned quants as 8 vectors of 32 (q[t] = elements
 * 32t..32t+31), the scale of each segment (sc[16]: Q4_K / Q5_K 8 sub-blocks of 32, Q6_K / Q3_K /
 * Q2_K 16 halves of 16), the int16 factors of the sums of x (pr: mins m_j, or -o sc_h), d and
 * dmin. */
static void unpack_super_block(int kind, const uint8_t *p, __m256i q[8], int sc[16], int pr[16], float *d, float *dmin) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    if (kind == KIND_Q4_K || kind == KIND_Q5_K) { /* sub-block t: nibble t % 2 of bytes qs + 32 (t / 2) + l */
        const int qs = kind == KIND_Q4_K ? 16 : 48;
        *d = gemm_avx2_half(p);
        *dmin = gemm_avx2_half(p + 2);
        const __m256i h = _mm256_loadu_si256((const __m256i *)(p + 16)); /* Q5_K: fifth bit t of byte 16 + l */
        for (int t = 0; t < 8; t++) {
            luhd_q4k_scale_min(p + 4, t, &sc[t], &pr[t]);
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + qs + 32 * (t / 2)));
            q[t] = _mm256_and_si256(t % 2 ? _mm256_srli_epi16(v, 4) : v, low4);
            if (kind == KIND_Q5_K) q[t] = _mm256_or_si256(q[t], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, t), one), 4));
        }
        for (int t = 8; t < 16; t++) sc[t] = pr[t] = 0;
    } else if (kind == KIND_Q6_K) { /* chunk t = 4 h + part: ql bytes 64 h + 32 (part % 2) + l, qh bits 2 part of 128 + 32 h + l */
        *d = gemm_avx2_half(p + 208);
        *dmin = 0.0f;
        for (int t = 0; t < 8; t++) {
            const int h = t / 4, part = t % 4;
            const __m256i l = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32 * (part % 2)));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
            const __m256i lo = _mm256_and_si256(part < 2 ? l : _mm256_srli_epi16(l, 4), low4);
            q[t] = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * part), low2), 4));
        }
        for (int j = 0; j < 16; j++) {
            sc[j] = (int8_t)p[192 + j];
            pr[j] = -32 * sc[j];
        }
    } else if (kind == KIND_Q2_K) { /* chunk t: bits 2 (t % 4) of bytes 16 + 32 (t / 4) + l; half j: sc | m << 4 in byte j */
        *d = gemm_avx2_half(p + 80);
        *dmin = gemm_avx2_half(p + 82);
        for (int t = 0; t < 8; t++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * (t / 4)));
            q[t] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * (t % 4)), low2);
        }
        for (int j = 0; j < 16; j++) {
            sc[j] = p[j] & 0x0F;
            pr[j] = p[j] >> 4;
        }
    } else { /* Q3_K, chunk t: bits 2 (t % 4) of bytes 32 + 32 (t / 4) + l, plus 4 where bit t of byte l is set */
        *d = gemm_avx2_half(p + 108);
        *dmin = 0.0f;
        const __m256i h = _mm256_loadu_si256((const __m256i *)p);
        for (int t = 0; t < 8; t++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 + 32 * (t / 4)));
            const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(v, 2 * (t % 4)), low2);
            q[t] = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, t), one), 2));
        }
        for (int j = 0; j < 16; j++) {
            sc[j] = luhd_q3k_scale(p + 96, j);
            pr[j] = -4 * sc[j];
        }
    }
}

/* The 8 lanes a[n] & 0xFFFF | b[n] << 16 (int16 pairs for vpmaddwd). */
static inline __m256i int16_pairs(const int a[8], const int b[8]) {
    int32_t v[8];
    for (int n = 0; n < 8; n++) v[n] = (int32_t)(((uint32_t)a[n] & 0xFFFF) | (uint32_t)b[n] << 16);
    return _mm256_loadu_si256((const __m256i *)v);
}

/* Unpacks super-blocks [s0, s1) of rows [n0, n0 + nr) (nr <= 32) of W into the tile, super-block
 * s at tile super-block s - s0 (PANELS * KPB bytes each); rows past nr get zero weights, scales
 * and factors. */
static void pack_tile_k(int format, const uint8_t *w, size_t rb, long n0, int nr, long s0, long s1, uint8_t *tile) {
    const int kind = k_kind(format), bb = luhd_quant_block_bytes(format), panels = (nr + 7) / 8;
    const int segments = kind == KIND_Q4_K || kind == KIND_Q5_K ? 8 : 16, pairs = segments / 2;
    for (long s = s0; s < s1; s++) {
        for (int p = 0; p < panels; p++) {
            uint8_t *pb = tile + (size_t)(s - s0) * PANELS * KPB + (size_t)p * KPB;
            __m256i q[8][8];
            int sc[16][8], pr[16][8];
            float d[8], dmin[8];
            for (int n = 0; n < 8; n++) {
                int scn[16], prn[16];
                if (8 * p + n < nr) {
                    unpack_super_block(kind, w + (size_t)(n0 + 8 * p + n) * rb + (size_t)s * bb, q[n], scn, prn, &d[n], &dmin[n]);
                } else {
                    for (int t = 0; t < 8; t++) q[n][t] = _mm256_setzero_si256();
                    for (int j = 0; j < 16; j++) scn[j] = prn[j] = 0;
                    d[n] = dmin[n] = 0.0f;
                }
                for (int j = 0; j < 16; j++) sc[j][n] = scn[j], pr[j][n] = prn[j];
            }
            for (int t = 0; t < 8; t++) {
                __m256i r[8], c[8];
                for (int n = 0; n < 8; n++) r[n] = q[n][t];
                gemm_avx2_transpose8(r, c);
                for (int g = 0; g < 8; g++) _mm256_storeu_si256((__m256i *)(pb + 32 * (8 * t + g)), c[g]);
            }
            for (int j = 0; j < segments; j++) _mm256_storeu_si256((__m256i *)(pb + K_SC + 32 * j), int16_pairs(sc[j], sc[j]));
            for (int j = 0; j < pairs; j++) _mm256_storeu_si256((__m256i *)(pb + K_PAIR + 32 * j), int16_pairs(pr[2 * j], pr[2 * j + 1]));
            _mm256_storeu_ps((float *)(pb + K_D), _mm256_loadu_ps(d));
            _mm256_storeu_ps((float *)(pb + K_DMIN), _mm256_loadu_ps(dmin));
        }
    }
}

/* 4 bytes at p broadcast to every lane. */
static inline __m256i broadcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* rows (1..MR) rows of x from i0 against np (1 or 2) panels of the tile starting at panel p0
 * (outputs n0 + 8 (p0 + j) + lane), super-blocks [s0, s1), the last panel's lanes limited by
 * `last` (a vpmaskmov mask). KIND: k_kind. Outputs start from 0, or with `accumulate` from y's
 * values (the sums of the super-blocks before s0). */
static inline __attribute__((always_inline)) void panel_rows_k(const uint8_t *tile, int p0, int np, long s0, long s1, const uint8_t *xbuf,
                                                               size_t xs, long cols, long i0, int rows, int kind, float *y, long ldy,
                                                               long n0, __m256i last, int accumulate) {
    const long nsb = cols / 256;
    /* Sums of x per 32 (times mins) or per 16 (times mins or -o sc); the Q4_K epilogue with mins. */
    const int per32 = kind == KIND_Q4_K || kind == KIND_Q5_K, mins = per32 || kind == KIND_Q2_K;
    const int segment = per32 ? 8 : 4, chunk = kind == KIND_Q4_K ? 8 : kind == KIND_Q6_K ? 2 : 4;
    __m256i mask[2];
    __m256 out[MR][2];
    const uint8_t *xr[MR];
    gemm_avx2_step_begin(xbuf, xs, i0, rows, np, p0, y, ldy, n0, last, accumulate, xr, mask, out);
    for (long s = s0; s < s1; s++) {
        const uint8_t *pb = tile + (size_t)(s - s0) * PANELS * KPB + (size_t)p0 * KPB;
        __m256i sum[MR][2];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < np; j++) sum[i][j] = _mm256_setzero_si256();
        for (int c = 0; c < 64; c += chunk) {
            __m256i a16[MR][2], sc[2];
            for (int j = 0; j < np; j++) sc[j] = _mm256_loadu_si256((const __m256i *)(pb + j * KPB + K_SC + 32 * (c / segment)));
            for (int g = c; g < c + chunk; g++) {
                __m256i wv[2];
                for (int j = 0; j < np; j++) wv[j] = _mm256_loadu_si256((const __m256i *)(pb + j * KPB + 32 * g));
                for (int i = 0; i < rows; i++) {
                    const __m256i xv = broadcast4(xr[i] + 256 * s + 4 * g);
                    for (int j = 0; j < np; j++) {
                        const __m256i p = _mm256_maddubs_epi16(wv[j], xv);
                        a16[i][j] = g == c ? p : _mm256_add_epi16(a16[i][j], p);
                    }
                }
            }
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < np; j++) sum[i][j] = _mm256_add_epi32(sum[i][j], _mm256_madd_epi16(a16[i][j], sc[j]));
        }
        /* The sums of x times the mins (into M) or times -o sc (into S). */
        __m256i m32[MR][2];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < np; j++) m32[i][j] = _mm256_setzero_si256();
        const int npairs = per32 ? 4 : 8;
        for (int p = 0; p < npairs; p++) {
            __m256i pv[2];
            for (int j = 0; j < np; j++) pv[j] = _mm256_loadu_si256((const __m256i *)(pb + j * KPB + K_PAIR + 32 * p));
            for (int i = 0; i < rows; i++) {
                const int16_t *x16 = (const int16_t *)(xr[i] + cols + 4 * nsb);
                const __m256i xv = broadcast4((const uint8_t *)(per32 ? x16 + 16 * nsb + 8 * s + 2 * p : x16 + 16 * s + 2 * p));
                for (int j = 0; j < np; j++) m32[i][j] = _mm256_add_epi32(m32[i][j], _mm256_madd_epi16(pv[j], xv));
            }
        }
        for (int j = 0; j < np; j++) {
            const __m256 d = _mm256_loadu_ps((const float *)(pb + j * KPB + K_D));
            const __m256 dmin = _mm256_loadu_ps((const float *)(pb + j * KPB + K_DMIN));
            for (int i = 0; i < rows; i++) {
                const __m256 dx = _mm256_set1_ps(((const float *)(xr[i] + cols))[s]);
                if (mins) {
                    const __m256 v = _mm256_fmsub_ps(_mm256_cvtepi32_ps(sum[i][j]), d, _mm256_mul_ps(_mm256_cvtepi32_ps(m32[i][j]), dmin));
                    out[i][j] = _mm256_fmadd_ps(v, dx, out[i][j]);
                } else {
                    const __m256i total = _mm256_add_epi32(sum[i][j], m32[i][j]);
                    out[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_mul_ps(d, dx), out[i][j]);
                }
            }
        }
    }
    gemm_avx2_step_end(out, mask, rows, np, p0, y, ldy, i0, n0);
}

GEMM_AVX2_DEFINE_PASS(pass_q4_k, panel_rows_k, KIND_Q4_K, MR)
GEMM_AVX2_DEFINE_PASS(pass_q5_k, panel_rows_k, KIND_Q5_K, MR)
GEMM_AVX2_DEFINE_PASS(pass_q6_k, panel_rows_k, KIND_Q6_K, MR_Q6)
GEMM_AVX2_DEFINE_PASS(pass_q3_k, panel_rows_k, KIND_Q3_K, MR)
GEMM_AVX2_DEFINE_PASS(pass_q2_k, panel_rows_k, KIND_Q2_K, MR)

void luhd_quant_gemm_k_avx2_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0, long k1,
                                         const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate) {
    if (!luhd_quant_gemm_k_avx2_supports(format) || nr <= 0 || m <= 0 || k0 < 0 || k1 > cols || k0 >= k1 || k0 % 256 != 0 || k1 % 256 != 0)
        return;
    if (nr > 8 * PANELS) nr = 8 * PANELS;
    const long s0 = k0 / 256, s1 = k1 / 256;
    uint8_t *t = (uint8_t *)tile;
    pack_tile_k(format, (const uint8_t *)w, row_bytes, n0, nr, s0, s1, t);
    const int kind = k_kind(format);
    const gemm_avx2_pass pass = kind == KIND_Q4_K   ? pass_q4_k
                                : kind == KIND_Q5_K ? pass_q5_k
                                : kind == KIND_Q6_K ? pass_q6_k
                                : kind == KIND_Q3_K ? pass_q3_k
                                                    : pass_q2_k;
    gemm_avx2_tile_passes(pass, t, (size_t)PANELS * KPB, nr, s0, s1, (const uint8_t *)xbuf, luhd_quant_gemm_k_avx2_x_bytes(cols, 1),
                          cols, m, y, ldy, n0, accumulate != 0);
}
#pragma clang attribute pop
