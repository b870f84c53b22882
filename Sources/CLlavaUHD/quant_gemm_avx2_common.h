/* Helpers shared by the AVX2 int8 prefill products (quant_gemm_avx2.c per block of 32,
 * quant_gemm_k_avx2.c per super-block of 256): the quantization of x, the transposition of 8
 * weight rows into the lane layout of their tiles, and the tile scaffolding (the loops over
 * ranges of a tile's blocks, pairs of its panels and steps of rows of x). Include inside an
 * "avx2,fma,f16c" target region. Not a public header. */
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

/* The start of a step of `rows` rows of x from i0 against np panels from p0 (outputs n0 + 8 (p0 +
 * j) + lane): each row's prepared x (xs bytes apart), the vpmaskmov masks of the np panels
 * (`last` for the second when np is 2, else for the first: a step's last panel is the tile's
 * last or a whole one), and each output vector from 0 or, with `accumulate`, from y. */
static inline __attribute__((always_inline)) void gemm_avx2_step_begin(const uint8_t *xbuf, size_t xs, long i0, int rows, int np,
                                                                       int p0, const float *y, long ldy, long n0, __m256i last,
                                                                       int accumulate, const uint8_t *xr[], __m256i mask[2],
                                                                       __m256 out[][2]) {
    const __m256i all = _mm256_set1_epi32(-1);
    mask[0] = np == 1 ? last : all;
    mask[1] = np == 2 ? last : all;
    for (int i = 0; i < rows; i++) {
        xr[i] = xbuf + (size_t)(i0 + i) * xs;
        for (int j = 0; j < np; j++) {
            const float *yo = y + (i0 + i) * ldy + n0 + 8 * (p0 + j);
            out[i][j] = accumulate ? _mm256_maskload_ps(yo, mask[j]) : _mm256_setzero_ps();
        }
    }
}

/* The end of a step: its outputs stored to y through the masks of gemm_avx2_step_begin. */
static inline __attribute__((always_inline)) void gemm_avx2_step_end(__m256 out[][2], const __m256i mask[2], int rows, int np, int p0,
                                                                     float *y, long ldy, long i0, long n0) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < np; j++) _mm256_maskstore_ps(y + (i0 + i) * ldy + n0 + 8 * (p0 + j), mask[j], out[i][j]);
}

/* One pass of a product over a tile: panels [p0, p0 + np) (np 1 or 2; 8 weight rows each,
 * outputs n0 + 8 (p0 + j) + lane) against all m rows of x, over the tile's units (blocks or
 * super-blocks) [u0, u1), the tile pointer at unit u0; the last panel's lanes limited by `last`
 * (a vpmaskmov mask); outputs start from 0, or with `acc` from y's values. */
typedef void (*gemm_avx2_pass)(const uint8_t *tile, int p0, int np, long u0, long u1, const uint8_t *xb, size_t xs, long cols,
                               long m, float *y, long ldy, long n0, __m256i last, int acc);

/* Tile bytes a range of the passes covers at most: 512 KiB, so that the half of it that a pass
 * of two panels re-reads for every step of rows (256 KiB at most) stays in a Zen 3 core's 512
 * KiB L2 next to the rows of x streaming through. Measured on Zen 3, one thread, CPU time,
 * 1000 rows (BENCHMARKS.md notes:q8gemm12): Q8_0 11008 -> 4096 (a 792 KiB tile, read from L3
 * at every step as one range) +15 % (2 threads +21 %; 288 KiB ranges +34 % at a quieter
 * minute), Q4_0 +4 %; 4096 columns (288 KiB) and the K
 * formats' 11008 (495 KiB) stay one range: split, Q6_K 11008 -> 4096 lost 13 % (2 ranges) and
 * 40 % (4), 4096 -> 4096 gained nothing. */
#define GEMM_AVX2_RANGE_BYTES 524288

/* Runs `pass` over a packed tile of nr (1..32) weight rows, 4 panels per unit of unit_bytes
 * bytes, units [u0, u1): in ranges of equal numbers of units, each at most
 * GEMM_AVX2_RANGE_BYTES of the tile, and within a range two panels at a time. Each range after
 * the first adds to the outputs the ranges before it left in y: an output's f32 operations are
 * the same, in the same order, as in one range over all units, so the bits do not change. */
static inline void gemm_avx2_tile_passes(gemm_avx2_pass pass, const uint8_t *tile, size_t unit_bytes, int nr, long u0, long u1,
                                         const uint8_t *xb, size_t xs, long cols, long m, float *y, long ldy, long n0,
                                         int accumulate) {
    const int panels = (nr + 7) / 8;
    /* Lanes of the last panel that are rows of W. */
    const int tail = nr - 8 * (panels - 1);
    const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i all = _mm256_set1_epi32(-1);
    const long units = u1 - u0, most = (long)(GEMM_AVX2_RANGE_BYTES / unit_bytes) > 1 ? (long)(GEMM_AVX2_RANGE_BYTES / unit_bytes) : 1;
    const long ranges = (units + most - 1) / most, per = (units + ranges - 1) / ranges;
    for (long r0 = u0; r0 < u1; r0 += per) {
        const long r1 = r0 + per < u1 ? r0 + per : u1;
        const uint8_t *t = tile + (size_t)(r0 - u0) * unit_bytes;
        for (int p0 = 0; p0 < panels; p0 += 2) {
            const int np = panels - p0 >= 2 ? 2 : 1;
            pass(t, p0, np, r0, r1, xb, xs, cols, m, y, ldy, n0, p0 + np == panels ? last : all, accumulate || r0 > u0);
        }
    }
}

/* Defines `static void NAME(...)`, a gemm_avx2_pass that calls ROWS (a product's always-inline
 * function of a step of rows: ROWS(tile, p0, np, u0, u1, xb, xs, cols, i0, rows, kind, y, ldy,
 * n0, last, acc)) for the format kind KIND, STEP rows of x at a time (at most 6), then the 1 to
 * STEP - 1 rows left, with np, rows and kind constants in every call so each is compiled for
 * them. Before each whole step it prefetches the next step's outputs (ldy floats apart: no
 * prefetcher follows them). */
#define GEMM_AVX2_DEFINE_PASS(NAME, ROWS, KIND, STEP)                                                                          \
    static inline __attribute__((always_inline)) void NAME##_panels(const uint8_t *tile, int p0, int np, long u0, long u1,       \
                                                                    const uint8_t *xb, size_t xs, long cols, long m, float *y,  \
                                                                    long ldy, long n0, __m256i last, int acc) {                 \
        long i = 0;                                                                                                            \
        for (; i + (STEP) <= m; i += (STEP)) {                                                                                 \
            for (long j = i + (STEP); j < i + 2 * (STEP) && j < m; j++)                                                       \
                _mm_prefetch((const char *)(y + j * ldy + n0 + 8 * p0), _MM_HINT_T0);                                          \
            ROWS(tile, p0, np, u0, u1, xb, xs, cols, i, (STEP), (KIND), y, ldy, n0, last, acc);                                \
        }                                                                                                                      \
        switch (m - i) {                                                                                                       \
        case 5: ROWS(tile, p0, np, u0, u1, xb, xs, cols, i, 5, (KIND), y, ldy, n0, last, acc); break;                          \
        case 4: ROWS(tile, p0, np, u0, u1, xb, xs, cols, i, 4, (KIND), y, ldy, n0, last, acc); break;                          \
        case 3: ROWS(tile, p0, np, u0, u1, xb, xs, cols, i, 3, (KIND), y, ldy, n0, last, acc); break;                          \
        case 2: ROWS(tile, p0, np, u0, u1, xb, xs, cols, i, 2, (KIND), y, ldy, n0, last, acc); break;                          \
        case 1: ROWS(tile, p0, np, u0, u1, xb, xs, cols, i, 1, (KIND), y, ldy, n0, last, acc); break;                          \
        default: break;                                                                                                        \
        }                                                                                                                      \
    }                                                                                                                          \
    static void NAME(const uint8_t *tile, int p0, int np, long u0, long u1, const uint8_t *xb, size_t xs, long cols, long m,   \
                     float *y, long ldy, long n0, __m256i last, int acc) {                                                     \
        if (np == 2) NAME##_panels(tile, p0, 2, u0, u1, xb, xs, cols, m, y, ldy, n0, last, acc);                               \
        else NAME##_panels(tile, p0, 1, u0, u1, xb, xs, cols, m, y, ldy, n0, last, acc);                                       \
    }
#endif
