/* Projector inner loops; see include/projector_kernels.h. Plain C written so that the
 * compiler vectorises the contiguous (channel) loops; reductions use explicit partial sums. */
#include "projector_kernels.h"

#include <immintrin.h>
#include <math.h>

#include "kernels.h"

/* The adaptive convolution works on strips of CONV_PIXELS neighbouring output pixels and
 * CONV_LANES channels at a time: a strip's pixels share all but one column of their taps, so
 * each source vector is loaded once per tap row and added into every pixel of the strip that
 * uses it (up to CONV_PIXELS multiply-adds per load instead of one, with the accumulators in
 * registers). Each pixel still sums its taps in the order t = i*d + j, starting from zero:
 * the result is the same as one pixel at a time. */
enum { CONV_PIXELS = 4, CONV_LANES = 16 };

/* `in` points at the strip's first channel of pixel (0, 0); source pixels are `pixel_stride`
 * floats apart and rows width * channels (both the [height, width, channels] map and its
 * blocked form). */
static inline __attribute__((always_inline)) void adaptive_conv_strip(const float *in, long pixel_stride, long width, long channels, const float *kernels, long diameter,
                                       const int32_t *row_of, const int32_t *col_of, long y, long x0, long pixels,
                                       long c0, long lanes, float *out) {
    float acc[CONV_PIXELS][CONV_LANES] = {{0}};
    const long taps = diameter * diameter;
    const float *k = kernels + (y * width + x0) * taps;
    for (long i = 0; i < diameter; i++) {
        const float *row = in + (long)row_of[y + i] * width * channels;
        for (long q = 0; q < pixels + diameter - 1; q++) {
            const float *s = row + (long)col_of[x0 + q] * pixel_stride;
            for (long p = 0; p < CONV_PIXELS; p++) {
                const long j = q - p;
                if (p >= pixels || j < 0 || j >= diameter) continue;
                const float w = k[p * taps + i * diameter + j];
                for (long c = 0; c < lanes; c++) acc[p][c] += w * s[c];
            }
        }
    }
    for (long p = 0; p < pixels; p++)
        for (long c = 0; c < lanes; c++) out[((y * width) + x0 + p) * channels + c0 + c] = acc[p][c];
}

/* AVX-512 strips for JBU's 7x7 kernels: WIDE_PIXELS neighbouring output pixels x WIDE_LANES
 * channels (16 accumulators in zmm registers), read from the input rearranged in blocks of
 * WIDE_LANES channels (`luhd_proj_channel_blocks`): in the [height, width, channels] layout a
 * strip's 98 source vectors are whole multiples of 4 KB apart and all fall in the same two L1
 * sets; in blocks, a tap row's 14 vectors are consecutive. The loops have constant bounds and are
 * unrolled completely, so the tap tests resolve at compile time and the accumulators never leave
 * the registers; each source vector is loaded once per tap row for the whole strip and each
 * weight is a broadcast. Per pixel the taps are still summed in the order t = i*7 + j from zero
 * with one fused multiply-add each: the result is the generic strip's. */
enum { WIDE_DIAMETER = 7, WIDE_PIXELS = 8, WIDE_VECTORS = 2, WIDE_LANES = 16 * WIDE_VECTORS };
#define WIDE_ORDER_BARRIER(a)                                                                                     \
    __asm__ volatile("" : "+v"(a[0][0]), "+v"(a[1][0]), "+v"(a[2][0]), "+v"(a[3][0]), "+v"(a[4][0]), "+v"(a[5][0]),  \
                     "+v"(a[6][0]), "+v"(a[7][0]), "+v"(a[0][1]), "+v"(a[1][1]), "+v"(a[2][1]), "+v"(a[3][1]),       \
                     "+v"(a[4][1]), "+v"(a[5][1]), "+v"(a[6][1]), "+v"(a[7][1]))

__attribute__((target("avx512f,avx2,fma"), noinline)) static void adaptive_conv_strips_wide(
    const float *blocked, long width, long channels, const float *kernels, const int32_t *row_of,
    const int32_t *col_of, long y, long strips, float *out) {
    enum { D = WIDE_DIAMETER, P = WIDE_PIXELS, V = WIDE_VECTORS, TAPS = D * D };
    const long blocks = channels / WIDE_LANES;
    /* One channel block at a time along the row: a strip shares 6 of its 14 source columns with
     * the next, and the row's kernels (width x 49 floats) stay in L1. */
    for (long cb = 0; cb < blocks; cb++)
    for (long x0 = 0; x0 < strips * P; x0 += P) {
        const float *k = kernels + (y * width + x0) * TAPS;
        __m512 acc[P][V];
#pragma clang loop unroll(full)
        for (int p = 0; p < P; p++)
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) acc[p][v] = _mm512_setzero_ps();
        for (int i = 0; i < D; i++) {
            const float *row = blocked + ((long)row_of[y + i] * blocks + cb) * width * WIDE_LANES;
            const float *ki = k + i * D;
#pragma clang loop unroll(full)
            for (int q = 0; q < P + D - 1; q++) {
                const float *s = row + (long)col_of[x0 + q] * WIDE_LANES;
                __m512 src[V];
#pragma clang loop unroll(full)
                for (int v = 0; v < V; v++) src[v] = _mm512_loadu_ps(s + 16 * v);
#pragma clang loop unroll(full)
                for (int p = 0; p < P; p++) {
                    const int j = q - p;
                    if (j < 0 || j >= D) continue;
                    const __m512 w = _mm512_set1_ps(ki[p * TAPS + j]);
#pragma clang loop unroll(full)
                    for (int v = 0; v < V; v++) acc[p][v] = _mm512_fmadd_ps(w, src[v], acc[p][v]);
                }
                /* Keeps this column's multiply-adds (one per pixel, independent) together:
                 * without it the compiler groups each pixel's 7 dependent ones, and the core
                 * waits on their latency. */
                WIDE_ORDER_BARRIER(acc);
            }
        }
        float *o = out + (y * width + x0) * channels + cb * WIDE_LANES;
#pragma clang loop unroll(full)
        for (int p = 0; p < P; p++)
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) _mm512_storeu_ps(o + p * channels + 16 * v, acc[p][v]);
    }
}

/* The AVX2 form of the strips above (x86-64-v3 CPUs without AVX-512, e.g. Zen 3), on the same
 * blocked layout: AVX2_PIXELS neighbouring output pixels x 16 channels (2 ymm vectors; 12
 * accumulators, 2 source vectors and a broadcast weight within the 16 ymm registers), each
 * 32-channel block in two halves that share the strip's kernel weights (in L1). Per pixel the
 * taps are summed in the order t = i*7 + j from zero with one fused multiply-add each, as the
 * AVX-512 strip and the generic strip do: the same results bit for bit. */
enum { AVX2_PIXELS = 6, AVX2_VECTORS = 2, AVX2_HALVES = WIDE_LANES / (8 * AVX2_VECTORS) };
#define AVX2_ORDER_BARRIER(a)                                                                                     \
    __asm__ volatile("" : "+x"(a[0][0]), "+x"(a[1][0]), "+x"(a[2][0]), "+x"(a[3][0]), "+x"(a[4][0]), "+x"(a[5][0]),  \
                     "+x"(a[0][1]), "+x"(a[1][1]), "+x"(a[2][1]), "+x"(a[3][1]), "+x"(a[4][1]), "+x"(a[5][1]))

__attribute__((target("avx2,fma"), noinline)) static void adaptive_conv_strips_avx2(
    const float *blocked, long width, long channels, const float *kernels, const int32_t *row_of,
    const int32_t *col_of, long y, long strips, float *out) {
    enum { D = WIDE_DIAMETER, P = AVX2_PIXELS, V = AVX2_VECTORS, TAPS = D * D };
    const long blocks = channels / WIDE_LANES;
    for (long cb = 0; cb < blocks; cb++)
    for (long x0 = 0; x0 < strips * P; x0 += P)
    for (int half = 0; half < AVX2_HALVES; half++) {
        const float *k = kernels + (y * width + x0) * TAPS;
        __m256 acc[P][V];
#pragma clang loop unroll(full)
        for (int p = 0; p < P; p++)
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) acc[p][v] = _mm256_setzero_ps();
        for (int i = 0; i < D; i++) {
            const float *row = blocked + ((long)row_of[y + i] * blocks + cb) * width * WIDE_LANES + half * 8 * V;
            const float *ki = k + i * D;
#pragma clang loop unroll(full)
            for (int q = 0; q < P + D - 1; q++) {
                const float *s = row + (long)col_of[x0 + q] * WIDE_LANES;
                __m256 src[V];
#pragma clang loop unroll(full)
                for (int v = 0; v < V; v++) src[v] = _mm256_loadu_ps(s + 8 * v);
#pragma clang loop unroll(full)
                for (int p = 0; p < P; p++) {
                    const int j = q - p;
                    if (j < 0 || j >= D) continue;
                    const __m256 w = _mm256_broadcast_ss(ki + p * TAPS + j);
#pragma clang loop unroll(full)
                    for (int v = 0; v < V; v++) acc[p][v] = _mm256_fmadd_ps(w, src[v], acc[p][v]);
                }
                AVX2_ORDER_BARRIER(acc);
            }
        }
        float *o = out + (y * width + x0) * channels + cb * WIDE_LANES + half * 8 * V;
#pragma clang loop unroll(full)
        for (int p = 0; p < P; p++)
#pragma clang loop unroll(full)
            for (int v = 0; v < V; v++) _mm256_storeu_ps(o + p * channels + 8 * v, acc[p][v]);
    }
}

/* The blocked layout's kernels run with AVX-512 or, failing that, AVX2 + FMA (the library's
 * x86-64-v3 floor: the AVX2 table exists). */
static int blocked_kernels_available(void) { return luhd_kernels_avx512() != 0 || luhd_kernels_avx2() != 0; }

int luhd_proj_adaptive_conv_uses_blocks(long diameter, long channels) {
    return diameter == WIDE_DIAMETER && channels % WIDE_LANES == 0 && blocked_kernels_available();
}

void luhd_proj_channel_blocks(const float *in, long width, long channels, long y0, long y1, float *blocked) {
    const long blocks = channels / WIDE_LANES;
    for (long y = y0; y < y1; y++)
        for (long x = 0; x < width; x++)
            for (long cb = 0; cb < blocks; cb++) {
                const float *src = in + (y * width + x) * channels + cb * WIDE_LANES;
                float *dst = blocked + ((y * blocks + cb) * width + x) * WIDE_LANES;
                for (long l = 0; l < WIDE_LANES; l++) dst[l] = src[l];
            }
}

/* Bicubic passes into the blocked layout, WIDE_LANES channels at a time: per value
 * ((((0 + c0*s0) + c1*s1) + c2*s2) + c3*s3), products and sums rounded apart (never fused), as
 * the generic passes (kernels_simd.h bicubic_horizontal / bicubic_vertical) compute it. */
__attribute__((target("avx512f,avx2,fma"))) static inline __m512 bicubic_taps(__m512 c0, __m512 c1, __m512 c2,
                                                                            __m512 c3, const float *s0,
                                                                            const float *s1, const float *s2,
                                                                            const float *s3) {
    __m512 acc = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(c0, _mm512_loadu_ps(s0)));
    acc = _mm512_add_ps(acc, _mm512_mul_ps(c1, _mm512_loadu_ps(s1)));
    acc = _mm512_add_ps(acc, _mm512_mul_ps(c2, _mm512_loadu_ps(s2)));
    return _mm512_add_ps(acc, _mm512_mul_ps(c3, _mm512_loadu_ps(s3)));
}

__attribute__((target("avx512f,avx2,fma"), noinline)) static void bicubic_horizontal_blocked(
    const float *in, long y0, long y1, long w, long channels, long ow, const int32_t *ix, const float *wx,
    float *rows) {
#pragma clang fp contract(off)
    const long blocks = channels / WIDE_LANES;
    for (long y = y0; y < y1; y++)
        for (long cb = 0; cb < blocks; cb++) {
            const float *src = in + y * w * channels + cb * WIDE_LANES;
            float *dst = rows + (y * blocks + cb) * ow * WIDE_LANES;
            for (long ox = 0; ox < ow; ox++) {
                const __m512 c0 = _mm512_set1_ps(wx[4 * ox]), c1 = _mm512_set1_ps(wx[4 * ox + 1]);
                const __m512 c2 = _mm512_set1_ps(wx[4 * ox + 2]), c3 = _mm512_set1_ps(wx[4 * ox + 3]);
                const float *s0 = src + (long)ix[4 * ox] * channels, *s1 = src + (long)ix[4 * ox + 1] * channels;
                const float *s2 = src + (long)ix[4 * ox + 2] * channels, *s3 = src + (long)ix[4 * ox + 3] * channels;
#pragma clang loop unroll(full)
                for (int v = 0; v < WIDE_VECTORS; v++)
                    _mm512_storeu_ps(dst + ox * WIDE_LANES + 16 * v,
                                     bicubic_taps(c0, c1, c2, c3, s0 + 16 * v, s1 + 16 * v, s2 + 16 * v, s3 + 16 * v));
            }
        }
}

__attribute__((target("avx512f,avx2,fma"), noinline)) static void bicubic_vertical_blocked(
    const float *rows, long ow, long channels, long oy0, long oy1, const int32_t *iy, const float *wy, float *out) {
#pragma clang fp contract(off)
    const long blocks = channels / WIDE_LANES, len = ow * WIDE_LANES;
    /* One channel block at a time: its slab of all source rows (rows x ow x 32 floats) stays in
     * L2 across the output rows. */
    for (long cb = 0; cb < blocks; cb++)
        for (long oy = oy0; oy < oy1; oy++) {
            const float *r0 = rows + ((long)iy[4 * oy] * blocks + cb) * len;
            const float *r1 = rows + ((long)iy[4 * oy + 1] * blocks + cb) * len;
            const float *r2 = rows + ((long)iy[4 * oy + 2] * blocks + cb) * len;
            const float *r3 = rows + ((long)iy[4 * oy + 3] * blocks + cb) * len;
            const __m512 c0 = _mm512_set1_ps(wy[4 * oy]), c1 = _mm512_set1_ps(wy[4 * oy + 1]);
            const __m512 c2 = _mm512_set1_ps(wy[4 * oy + 2]), c3 = _mm512_set1_ps(wy[4 * oy + 3]);
            float *d = out + (oy * blocks + cb) * len;
            for (long v = 0; v < len; v += 16)
                _mm512_storeu_ps(d + v, bicubic_taps(c0, c1, c2, c3, r0 + v, r1 + v, r2 + v, r3 + v));
        }
}

/* The AVX2 forms of the two passes: the same per-value operations, 4 ymm vectors per block. */
__attribute__((target("avx2,fma"))) static inline __m256 bicubic_taps_avx2(__m256 c0, __m256 c1, __m256 c2, __m256 c3,
                                                                          const float *s0, const float *s1,
                                                                          const float *s2, const float *s3) {
    __m256 acc = _mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(c0, _mm256_loadu_ps(s0)));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(c1, _mm256_loadu_ps(s1)));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(c2, _mm256_loadu_ps(s2)));
    return _mm256_add_ps(acc, _mm256_mul_ps(c3, _mm256_loadu_ps(s3)));
}

__attribute__((target("avx2,fma"), noinline)) static void bicubic_horizontal_blocked_avx2(
    const float *in, long y0, long y1, long w, long channels, long ow, const int32_t *ix, const float *wx,
    float *rows) {
#pragma clang fp contract(off)
    const long blocks = channels / WIDE_LANES;
    for (long y = y0; y < y1; y++)
        for (long cb = 0; cb < blocks; cb++) {
            const float *src = in + y * w * channels + cb * WIDE_LANES;
            float *dst = rows + (y * blocks + cb) * ow * WIDE_LANES;
            for (long ox = 0; ox < ow; ox++) {
                const __m256 c0 = _mm256_set1_ps(wx[4 * ox]), c1 = _mm256_set1_ps(wx[4 * ox + 1]);
                const __m256 c2 = _mm256_set1_ps(wx[4 * ox + 2]), c3 = _mm256_set1_ps(wx[4 * ox + 3]);
                const float *s0 = src + (long)ix[4 * ox] * channels, *s1 = src + (long)ix[4 * ox + 1] * channels;
                const float *s2 = src + (long)ix[4 * ox + 2] * channels, *s3 = src + (long)ix[4 * ox + 3] * channels;
#pragma clang loop unroll(full)
                for (int v = 0; v < WIDE_LANES / 8; v++)
                    _mm256_storeu_ps(dst + ox * WIDE_LANES + 8 * v,
                                     bicubic_taps_avx2(c0, c1, c2, c3, s0 + 8 * v, s1 + 8 * v, s2 + 8 * v, s3 + 8 * v));
            }
        }
}

__attribute__((target("avx2,fma"), noinline)) static void bicubic_vertical_blocked_avx2(
    const float *rows, long ow, long channels, long oy0, long oy1, const int32_t *iy, const float *wy, float *out) {
#pragma clang fp contract(off)
    const long blocks = channels / WIDE_LANES, len = ow * WIDE_LANES;
    for (long cb = 0; cb < blocks; cb++)
        for (long oy = oy0; oy < oy1; oy++) {
            const float *r0 = rows + ((long)iy[4 * oy] * blocks + cb) * len;
            const float *r1 = rows + ((long)iy[4 * oy + 1] * blocks + cb) * len;
            const float *r2 = rows + ((long)iy[4 * oy + 2] * blocks + cb) * len;
            const float *r3 = rows + ((long)iy[4 * oy + 3] * blocks + cb) * len;
            const __m256 c0 = _mm256_set1_ps(wy[4 * oy]), c1 = _mm256_set1_ps(wy[4 * oy + 1]);
            const __m256 c2 = _mm256_set1_ps(wy[4 * oy + 2]), c3 = _mm256_set1_ps(wy[4 * oy + 3]);
            float *d = out + (oy * blocks + cb) * len;
            for (long v = 0; v < len; v += 8)
                _mm256_storeu_ps(d + v, bicubic_taps_avx2(c0, c1, c2, c3, r0 + v, r1 + v, r2 + v, r3 + v));
        }
}

int luhd_proj_bicubic_horizontal_blocked(const float *in, long y0, long y1, long w, long channels, long ow,
                                         const int32_t *ix, const float *wx, float *rows) {
    if (channels % WIDE_LANES != 0 || !blocked_kernels_available()) return 0;
    if (luhd_kernels_avx512())
        bicubic_horizontal_blocked(in, y0, y1, w, channels, ow, ix, wx, rows);
    else
        bicubic_horizontal_blocked_avx2(in, y0, y1, w, channels, ow, ix, wx, rows);
    return 1;
}

int luhd_proj_bicubic_vertical_blocked(const float *rows, long ow, long channels, long oy0, long oy1,
                                       const int32_t *iy, const float *wy, float *out) {
    if (channels % WIDE_LANES != 0 || !blocked_kernels_available()) return 0;
    if (luhd_kernels_avx512())
        bicubic_vertical_blocked(rows, ow, channels, oy0, oy1, iy, wy, out);
    else
        bicubic_vertical_blocked_avx2(rows, ow, channels, oy0, oy1, iy, wy, out);
    return 1;
}

void luhd_proj_adaptive_conv_rows(const float *in, const float *blocked, long width, long channels,
                                  const float *kernels, long diameter, const int32_t *row_of, const int32_t *col_of,
                                  long y0, long y1, float *out) {
    const int wide = blocked && luhd_kernels_avx512() != 0;
    for (long y = y0; y < y1; y++) {
        long start = 0;
        if (wide) {
            adaptive_conv_strips_wide(blocked, width, channels, kernels, row_of, col_of, y, width / WIDE_PIXELS, out);
            start = width / WIDE_PIXELS * WIDE_PIXELS;
        } else if (blocked) {
            adaptive_conv_strips_avx2(blocked, width, channels, kernels, row_of, col_of, y, width / AVX2_PIXELS, out);
            start = width / AVX2_PIXELS * AVX2_PIXELS;
        }
        for (long x0 = start; x0 < width; x0 += CONV_PIXELS) {
            const long pixels = width - x0 < CONV_PIXELS ? width - x0 : CONV_PIXELS;
            if (blocked) {
                /* A block's 32 channels are two 16-lane strips of the blocked map, whose pixels
                 * are WIDE_LANES floats apart. */
                for (long c0 = 0; c0 < channels; c0 += CONV_LANES)
                    adaptive_conv_strip(blocked + (c0 / WIDE_LANES) * width * WIDE_LANES + c0 % WIDE_LANES, WIDE_LANES,
                                        width, channels, kernels, diameter, row_of, col_of, y, x0, pixels, c0,
                                        CONV_LANES, out);
                continue;
            }
            long c0 = 0;
            for (; c0 + CONV_LANES <= channels; c0 += CONV_LANES)
                adaptive_conv_strip(in + c0, channels, width, channels, kernels, diameter, row_of, col_of, y, x0, pixels,
                                    c0, CONV_LANES, out);
            if (c0 < channels)
                adaptive_conv_strip(in + c0, channels, width, channels, kernels, diameter, row_of, col_of, y, x0, pixels,
                                    c0, channels - c0, out);
        }
    }
}

/* Small-k products: tiles of SMALL_K_ROWS rows x SMALL_K_VECTORS 16-lane vectors of C (16 zmm
 * accumulators) summed over the whole k at once, reading A and B in place (no packing) and
 * writing C once. The k rows of a column strip of B (k x 32 floats) stay in L1 for every row
 * tile. */
enum { SMALL_K_ROWS = 8, SMALL_K_VECTORS = 2, SMALL_K_COLUMNS = 16 * SMALL_K_VECTORS, SMALL_K_MAX = 512 };

__attribute__((target("avx512f,avx2,fma"))) static inline __attribute__((always_inline)) void small_k_tile(
    long rows, long k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, __mmask16 mask0,
    __mmask16 mask1, int stream) {
    __m512 acc[SMALL_K_ROWS][SMALL_K_VECTORS];
#pragma clang loop unroll(full)
    for (int r = 0; r < SMALL_K_ROWS; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    for (long t = 0; t < k; t++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(mask0, b + t * ldb);
        const __m512 b1 = _mm512_maskz_loadu_ps(mask1, b + t * ldb + 16);
#pragma clang loop unroll(full)
        for (int r = 0; r < SMALL_K_ROWS; r++) {
            if (r >= rows) break;
            const __m512 w = _mm512_set1_ps(a[r * lda + t]);
            acc[r][0] = _mm512_fmadd_ps(w, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(w, b1, acc[r][1]);
        }
    }
    if (stream) {
#pragma clang loop unroll(full)
        for (int r = 0; r < SMALL_K_ROWS; r++) {
            if (r >= rows) break;
            _mm512_stream_ps(c + r * ldc, acc[r][0]);
            _mm512_stream_ps(c + r * ldc + 16, acc[r][1]);
        }
        return;
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < SMALL_K_ROWS; r++) {
        if (r >= rows) break;
        _mm512_mask_storeu_ps(c + r * ldc, mask0, acc[r][0]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, acc[r][1]);
    }
}

__attribute__((target("avx512f,avx2,fma"))) static void small_k_strip_full(long m, long k, const float *a, long lda,
                                                                           const float *b, long ldb, float *c,
                                                                           long ldc, __mmask16 mask0,
                                                                           __mmask16 mask1, int stream) {
    long i = 0;
    if (stream)
        for (; i + SMALL_K_ROWS <= m; i += SMALL_K_ROWS)
            small_k_tile(SMALL_K_ROWS, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask0, mask1, 1);
    for (; i + SMALL_K_ROWS <= m; i += SMALL_K_ROWS)
        small_k_tile(SMALL_K_ROWS, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask0, mask1, 0);
    for (; i < m; i++) small_k_tile(1, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, mask0, mask1, 0);
}

/* 16 BF16 values (masked) widened to float32: exact. */
__attribute__((target("avx512f,avx2,fma,avx512bw,avx512vl"))) static inline __m512 small_k_widen(__mmask16 mask, const uint16_t *b) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, b)), 16));
}

/* B is float32 (`b`) or BF16 (`b16`, widened exactly into the strip): the same sums. */
__attribute__((target("avx512f,avx2,fma,avx512bw,avx512vl"), noinline)) static void small_k_product(
    long m, long n, long k, const float *a, long lda, const float *b, const uint16_t *b16, long ldb, float *c,
    long ldc, int stream) {
    /* Non-temporal stores only for whole, aligned 64-byte lines. */
    stream = stream && ((uintptr_t)c % 64) == 0 && ldc % 16 == 0;
    /* The strip's k rows of B copied together: rows of B a power of two apart (E floats) would
     * all fall in the same L1 set. */
    float strip[SMALL_K_MAX * SMALL_K_COLUMNS] __attribute__((aligned(64)));
    for (long j = 0; j < n; j += SMALL_K_COLUMNS) {
        const long left = n - j;
        const __mmask16 mask0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        const __mmask16 mask1 = left >= 32 ? (__mmask16)0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1u);
        if (b16)
            for (long t = 0; t < k; t++) {
                _mm512_store_ps(strip + t * SMALL_K_COLUMNS, small_k_widen(mask0, b16 + t * ldb + j));
                _mm512_store_ps(strip + t * SMALL_K_COLUMNS + 16, small_k_widen(mask1, b16 + t * ldb + j + 16));
            }
        else
            for (long t = 0; t < k; t++) {
                _mm512_store_ps(strip + t * SMALL_K_COLUMNS, _mm512_maskz_loadu_ps(mask0, b + t * ldb + j));
                _mm512_store_ps(strip + t * SMALL_K_COLUMNS + 16, _mm512_maskz_loadu_ps(mask1, b + t * ldb + j + 16));
            }
        small_k_strip_full(m, k, a, lda, strip, SMALL_K_COLUMNS, c + j, ldc, mask0, mask1, stream && left >= 32);
    }
    if (stream) _mm_sfence();
}

int luhd_proj_small_k_product(long m, long n, long k, const float *a, long lda, const float *b, long ldb, float *c,
                              long ldc, int stream_c) {
    if (k > SMALL_K_MAX || luhd_kernels_avx512() == 0) return 0;
    small_k_product(m, n, k, a, lda, b, NULL, ldb, c, ldc, stream_c);
    return 1;
}

int luhd_proj_small_k_product_bf16(long m, long n, long k, const float *a, long lda, const uint16_t *b, long ldb,
                                   float *c, long ldc) {
    if (k > SMALL_K_MAX || luhd_kernels_avx512() == 0) return 0;
    small_k_product(m, n, k, a, lda, NULL, b, ldb, c, ldc, 0);
    return 1;
}

float luhd_proj_dot(const float *a, const float *b, long n) {
    float s[8] = {0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    float total = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) total += a[i] * b[i];
    return total;
}

void luhd_proj_range_kernel_rows(const float *keys, long width, long diameter, const int32_t *row_of,
                                 const int32_t *col_of, float tau, const float *spatial, long y0, long y1,
                                 float *out) {
    enum { KEY_DIM = 32 };
    const long taps = diameter * diameter;
    float logits[64];
    for (long y = y0; y < y1; y++) {
        for (long x = 0; x < width; x++) {
            const long p = y * width + x;
            const float *center = keys + p * KEY_DIM;
            float max_logit = -INFINITY;
            for (long i = 0; i < diameter; i++) {
                const long row = (long)row_of[y + i] * width;
                for (long j = 0; j < diameter; j++) {
                    const float l = tau * luhd_proj_dot(keys + (row + col_of[x + j]) * KEY_DIM, center, KEY_DIM);
                    logits[i * diameter + j] = l;
                    if (l > max_logit) max_logit = l;
                }
            }
            float sum = 0;
            for (long t = 0; t < taps; t++) {
                logits[t] = expf(logits[t] - max_logit);
                sum += logits[t];
            }
            float *k = out + p * taps;
            float total = 0;
            for (long t = 0; t < taps; t++) {
                k[t] = logits[t] / sum * spatial[t];
                total += k[t];
            }
            const float norm = total > 1e-7f ? total : 1e-7f;
            for (long t = 0; t < taps; t++) k[t] /= norm;
        }
    }
}

void luhd_proj_roi_cells(const float *map, long channels, long first_pixel, const int32_t *start,
                         const int32_t *pixels, const float *weights, const float *divisor, const float *scale,
                         long cell0, long cell1, float *out, long out_stride) {
    for (long cell = cell0; cell < cell1; cell++) {
        float *dst = out + (cell - cell0) * out_stride;
        for (long c = 0; c < channels; c++) dst[c] = 0;
        for (long s = start[cell]; s < start[cell + 1]; s++) {
            const int32_t *px = pixels + 4 * s;
            float w[4];
            const float *v[4];
            for (int k = 0; k < 4; k++) {
                const long p = (long)px[k] - first_pixel;
                w[k] = weights[4 * s + k] * (scale ? scale[p] : 1.0f);
                v[k] = map + p * channels;
            }
            for (long c = 0; c < channels; c++)
                dst[c] += ((w[0] * v[0][c] + w[1] * v[1][c]) + w[2] * v[2][c]) + w[3] * v[3][c];
        }
        const float d = divisor[cell];
        for (long c = 0; c < channels; c++) dst[c] /= d;
    }
}

void luhd_proj_position_pool(const float *horizontal, long width, long channels, const int32_t *row_index,
                             const float *row_weight, void (*round)(float *, long), const int32_t *start,
                             const int32_t *pixels, const float *weights, const float *divisor, long first_pixel,
                             long pixel_count, long cell0, long cell1, long c0, long c1, float *scratch, float *out,
                             long out_stride) {
    for (long lane0 = c0; lane0 < c1; lane0 += LUHD_PROJ_POSITION_LANES) {
        const long lanes = c1 - lane0 < LUHD_PROJ_POSITION_LANES ? c1 - lane0 : LUHD_PROJ_POSITION_LANES;
        for (long q = 0; q < pixel_count; q++) {
            const long p = first_pixel + q, y = p / width, x = p % width;
            const float *src[4];
            for (int k = 0; k < 4; k++) src[k] = horizontal + ((long)row_index[4 * y + k] * width + x) * channels + lane0;
            luhd_proj_combine4(src[0], src[1], src[2], src[3], row_weight + 4 * y, lanes, scratch + q * lanes);
        }
        if (round) round(scratch, pixel_count * lanes);
        luhd_proj_roi_cells(scratch, lanes, first_pixel, start, pixels, weights, divisor, NULL, cell0, cell1,
                            out + lane0, out_stride);
    }
}

#pragma clang fp contract(off)
void luhd_proj_combine4(const float *s0, const float *s1, const float *s2, const float *s3, const float *w, long n,
                        float *out) {
    const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
    for (long i = 0; i < n; i++) out[i] = ((w0 * s0[i] + w1 * s1[i]) + w2 * s2[i]) + w3 * s3[i];
}
#pragma clang fp contract(on)

void luhd_proj_centre_normalise(float *row, long n, float sigma, const float *bias, const float *gamma,
                                const float *beta) {
    float lanes[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            row[i + l] += sigma * bias[i + l];
            lanes[l] += row[i + l];
        }
    double sum = 0;
    for (int l = 0; l < 16; l++) sum += lanes[l];
    for (; i < n; i++) {
        row[i] += sigma * bias[i];
        sum += row[i];
    }
    const float mean = (float)(sum / (double)n);
    for (i = 0; i < n; i++) row[i] = (row[i] - mean) * gamma[i] + beta[i];
}

void luhd_proj_key_value_row(const float *sample, const float *position, const float *embedding, long n, float *key,
                             float *value) {
    long i = 0;
    /* Non-temporal stores for whole 32-byte vectors when both outputs are aligned: the block's
     * keys and values (about 100 MB each) are not read again before the block is scored, so
     * reading their lines in before overwriting them is wasted traffic. */
    if (((uintptr_t)key | (uintptr_t)value) % 32 == 0) {
        for (; i + 8 <= n; i += 8) {
            const __m256 s = _mm256_loadu_ps(sample + i);
            _mm256_stream_ps(value + i, s);
            _mm256_stream_ps(key + i, _mm256_add_ps(_mm256_add_ps(s, _mm256_loadu_ps(position + i)),
                                                    _mm256_loadu_ps(embedding + i)));
        }
        _mm_sfence();
    }
    for (; i < n; i++) {
        value[i] = sample[i];
        key[i] = sample[i] + position[i] + embedding[i];
    }
}

void luhd_proj_add_scaled_rows(float *values, const float *projected, const float *bias, long columns, float scale,
                               long r0, long r1) {
    for (long r = r0; r < r1; r++) {
        float *v = values + r * columns;
        const float *p = projected + r * columns;
        for (long c = 0; c < columns; c++) v[c] += scale * (p[c] + bias[c]);
    }
}

void luhd_proj_transpose_rows(const float *src, long rows, long cols, long r0, long r1, float *dst) {
    enum { TILE = 16 };
    for (long rb = r0; rb < r1; rb += TILE) {
        const long re = rb + TILE < r1 ? rb + TILE : r1;
        for (long cb = 0; cb < cols; cb += TILE) {
            const long ce = cb + TILE < cols ? cb + TILE : cols;
            for (long c = cb; c < ce; c++)
                for (long r = rb; r < re; r++) dst[c * rows + r] = src[r * cols + c];
        }
    }
}
