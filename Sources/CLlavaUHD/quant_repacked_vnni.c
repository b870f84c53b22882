/* Int8 VNNI matrix-vector kernels over the row-interleaved copies of quant_repack.c (Q8_0, Q4_0,
 * Q4_K; declared in quant_kernels.h).
 *
 * x is prepared exactly as for the stored layouts (luhd_quant_prepare with LUHD_QK_INT8_VNNI), and
 * each output row goes through the same operations in the same order as in
 * quant_matvec_vnni.c (the same integer dot products, scale products, multiply-adds and final
 * sums), so the results are bit-identical to the kernels on the stored layout. What changes:
 *   - whole 64-byte loads feed vpdpbusd (Q8_0: no scale bytes between the quants; Q4_0: no
 *     gathering of the nibble bytes; Q4_K: one 512-bit load, mask and shift unpack 128 weights);
 *   - Q4_K's packed 6-bit scales and mins of 4 rows come out of one 64-byte header in 4
 *     operations;
 *   - Q8_0 and Q4_0: the 4 weight rows of a row block run together on one stream, so each
 *     group's bytes are read once, in order; with 2-4 rows of x two weight rows at a time share
 *     each load of x (see G8_REPACKED; Q8_0 with 3 rows runs the 4 one after the other);
 *   - Q4_K: with one row of x, four weight rows run together on one stream, so each load of
 *     prepared x (the int8 values, dx and the offset terms) serves four rows; with 2-4 rows of x
 *     the rows run one at a time (the accumulators of 4 x 4 would not fit in the registers);
 *   - Q8_0 and Q4_0 with one row of x stream with no software prefetch: the hardware prefetchers
 *     follow them (the copies sit in 2 MiB pages), and the prefetch instructions cost more than
 *     they gained (measured 2026-12-06 on Zen 4, one row of x against 11008 x 4096 matrices, bytes
 *     per second of thread CPU time; BENCHMARKS.md, notes:decode5); with 2-4 rows of x see
 *     G8_REPACKED; Q4_K prefetches its stream DECODE_PREFETCH_BYTES ahead (quant_vnni_common.h). */
#include "quant_kernels.h"
#include <immintrin.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))), apply_to = function)
#include "quant_vnni_common.h"

#define AI static inline __attribute__((always_inline))

/* Asks for the cache lines of [p, p + n) in L2 (see G8_REPACKED and q4_k_repacked). */
AI void prefetch_l2(const uint8_t *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T1);
    _mm_prefetch((const char *)p + n - 1, _MM_HINT_T1);
}

/* ---- Q8_0 and Q4_0: the 4 rows of a row block with m (1..4) rows of x; the arithmetic of
 * g8_accumulate (quant_vnni_common.h). Q8_0 group of a row = 16 bytes of f16 scales + its 4
 * operands (4 x 64 int8); Q4_0 = 16 bytes of scales + 2 x 64 nibble bytes whose low and high
 * nibbles are the operands (see quant_repack.c). ---- */

/* Row j's scales and operands of the Q8_0 group at b. */
AI void q8_0_rp_operands(const uint8_t *b, __m256 *d8, __m512i w[4]) {
    const __m512i k128 = _mm512_set1_epi8((char)0x80);
    *d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
    for (int k = 0; k < 4; k++) w[k] = _mm512_xor_si512(_mm512_loadu_si512(b + 16 + 64 * k), k128);
}

/* Row j's scales and operands of the Q4_0 group at b. */
AI void q4_0_rp_operands(const uint8_t *b, __m256 *d8, __m512i w[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    *d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
    const __m512i t0 = _mm512_loadu_si512(b + 16), t1 = _mm512_loadu_si512(b + 80);
    w[0] = _mm512_and_si512(t0, m4);
    w[1] = _mm512_and_si512(_mm512_srli_epi16(t0, 4), m4);
    w[2] = _mm512_and_si512(t1, m4);
    w[3] = _mm512_and_si512(_mm512_srli_epi16(t1, 4), m4);
}

/* Rows [r0, r1) (multiples of 4): one row block at a time. The products of a row of x do not
 * depend on the other rows of the call, so any split of the rows of x gives the same bits.
 * NAME_block: the block's 4 weight rows one after the other on one stream, each against the m
 * rows of x (g8_accumulate); one row of x, and Q8_0's 3 rows.
 * NAME_rows: weight rows 2p and 2p + 1 together (p = 0, 1), each operand of x loaded once for
 * both (g8_pair_sums), their two 8-lane accumulators of a row of x side by side in one 16-lane
 * register: 8 weight operands, 2m accumulators and x fit in the 32 registers, and a group loads
 * 2m x 4 operands of x instead of 4m x 4 (those loads had bound the 4-row pass, run before as
 * two passes of 2 rows over each block); 2 and 4 rows of x, and Q4_0's 3 (PAIRS3).
 * Prefetch: with 3-4 rows of x a group takes several times one row's time and the hardware
 * prefetchers fall behind, so each group asks for the same group of the next row block in L2
 * (`next`, one block ahead); with 1-2 rows that request cost more than it gained. Measured on
 * Zen 4, 2 threads, 11008 x 4096 from memory, slowest thread's CPU time under load 7-18
 * (BENCHMARKS.md, notes:batch6), before -> after: Q8_0 4 rows 1.47-1.77 -> 0.85-1.06 ms (one row
 * 0.67-0.80), 2 rows 0.96-1.12 -> 0.73-0.80; Q4_0 4 rows 0.70-0.74 -> 0.61-0.63 (one row
 * 0.34-0.43), 3 rows 0.51-0.56 -> 0.46; Q8_0's 3 rows measured slower paired (1.08-1.11 against
 * 0.89-0.99 ms) and stay on NAME_block. The block after r1 is asked for too (a prefetch never
 * faults): callers usually go on there. */
#define G8_REPACKED(NAME, OPERANDS, GB, PAIRS3)                                                                \
    AI void NAME##_block(const uint8_t *blk, long cols, const uint8_t *prep, size_t pstride, int m, float *y, \
                         long ldy, long r, const uint8_t *next) {                                             \
        const long ng = cols / 256;                                                                           \
        __m256 acc[4][4];                                                                                     \
        for (int j = 0; j < 4; j++)                                                                           \
            for (int i = 0; i < m; i++) acc[j][i] = _mm256_setzero_ps();                                      \
        for (long g = 0; g < ng; g++) {                                                                       \
            if (next) prefetch_l2(next + (size_t)g * 4 * GB, 4 * GB);                                         \
            for (int j = 0; j < 4; j++) {                                                                     \
                __m256 d8;                                                                                    \
                __m512i w[4];                                                                                 \
                OPERANDS(blk + (size_t)g * 4 * GB + GB * (size_t)j, &d8, w);                                  \
                for (int i = 0; i < m; i++)                                                                   \
                    acc[j][i] = g8_accumulate(acc[j][i], w, d8, prep + (size_t)i * pstride + g * G8_PREP_BYTES); \
            }                                                                                                 \
        }                                                                                                     \
        for (int j = 0; j < 4; j++)                                                                           \
            for (int i = 0; i < m; i++) y[i * ldy + r + j] = hsum8(acc[j][i]);                                \
    }                                                                                                         \
    AI void NAME##_rows(const uint8_t *blk, long cols, const uint8_t *prep, size_t pstride, int m, float *y,  \
                        long ldy, long r, const uint8_t *next) {                                              \
        const long ng = cols / 256;                                                                           \
        __m512 acc[2][4];                                                                                     \
        for (int p = 0; p < 2; p++)                                                                           \
            for (int i = 0; i < m; i++) acc[p][i] = _mm512_setzero_ps();                                      \
        for (long g = 0; g < ng; g++) {                                                                       \
            const uint8_t *gb = blk + (size_t)g * 4 * GB;                                                     \
            if (next) prefetch_l2(next + (size_t)g * 4 * GB, 4 * GB);                                         \
            for (int p = 0; p < 2; p++) {                                                                     \
                __m256 da, db;                                                                                \
                __m512i wa[4], wb[4];                                                                         \
                OPERANDS(gb + GB * (size_t)(2 * p), &da, wa);                                                 \
                OPERANDS(gb + GB * (size_t)(2 * p + 1), &db, wb);                                             \
                const __m512 d16 = _mm512_insertf32x8(_mm512_castps256_ps512(da), db, 1);                     \
                for (int i = 0; i < m; i++) {                                                                 \
                    const uint8_t *gp = prep + (size_t)i * pstride + g * G8_PREP_BYTES;                       \
                    const __m512 dx = _mm512_broadcast_f32x8(_mm256_loadu_ps((const float *)(gp + 288)));     \
                    acc[p][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(g8_pair_sums(wa, wb, gp)),                 \
                                                _mm512_mul_ps(d16, dx), acc[p][i]);                           \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        for (int p = 0; p < 2; p++)                                                                           \
            for (int i = 0; i < m; i++) {                                                                     \
                y[i * ldy + r + 2 * p] = hsum8(_mm512_castps512_ps256(acc[p][i]));                            \
                y[i * ldy + r + 2 * p + 1] = hsum8(_mm512_extractf32x8_ps(acc[p][i], 1));                     \
            }                                                                                                 \
    }                                                                                                         \
    static void NAME(const uint8_t *w, size_t rb, long r0, long r1, long cols, const uint8_t *prep, int m,   \
                     float *y, long ldy) {                                                                    \
        const size_t ps = luhd_quant_vnni_g8_row_stride(cols);                                                \
        for (long q = r0 / 4; q < r1 / 4; q++) {                                                              \
            const uint8_t *blk = w + (size_t)q * 4 * rb;                                                      \
            const uint8_t *next = blk + 4 * rb;                                                               \
            switch (m) {                                                                                      \
            case 1: NAME##_block(blk, cols, prep, ps, 1, y, ldy, 4 * q, NULL); break;                         \
            case 2: NAME##_rows(blk, cols, prep, ps, 2, y, ldy, 4 * q, NULL); break;                          \
            case 3:                                                                                           \
                if (PAIRS3) NAME##_rows(blk, cols, prep, ps, 3, y, ldy, 4 * q, next);                         \
                else NAME##_block(blk, cols, prep, ps, 3, y, ldy, 4 * q, next);                               \
                break;                                                                                        \
            default: NAME##_rows(blk, cols, prep, ps, 4, y, ldy, 4 * q, next); break;                         \
            }                                                                                                 \
        }                                                                                                     \
    }
G8_REPACKED(q8_0_repacked, q8_0_rp_operands, 272, 0)
G8_REPACKED(q4_0_repacked, q4_0_rp_operands, 144, 1)
#undef G8_REPACKED

/* ---- Q4_K: per super-block of 4 rows: a 64-byte header (the 4 rows' d and dmin, then their
 * 6-bit scales and mins as low nibbles and top bit pairs), then each row's 128 nibble bytes as
 * 2 x 64 (see quant_repack.c; the arithmetic is q4_k_accumulate's) ---- */

/* The 64 six-bit values of a Q4_K group header as bytes: 128-bit lane 0 = the scales of rows 0
 * and 1 (8 each), lane 1 = the scales of rows 2 and 3, lanes 2 and 3 = their mins. The low
 * nibbles come from 32 bytes seen twice (the second time shifted down by 4), the top bit pairs
 * from 16 bytes seen four times, each rotated so that its pair lands on bits 4-5. */
AI __m512i q4_k_header_values(const uint8_t *g) {
    const __m512i lo = _mm512_and_si512(_mm512_srlv_epi64(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(g + 16))),
                                                          _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0)),
                                        _mm512_set1_epi8(0x0F));
    const __m512i top = _mm512_rolv_epi64(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(g + 48))),
                                          _mm512_set_epi64(62, 62, 0, 0, 2, 2, 4, 4));
    return _mm512_ternarylogic_epi64(lo, top, _mm512_set1_epi8(0x30), 0xF8);   /* lo | (top & 0x30) */
}

/* The 4 unsigned 64-byte operands of one row's super-block from its 128 nibble bytes. */
AI void q4_k_unpack_rp(const uint8_t *nib, __m512i wq[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i l0 = _mm512_loadu_si512(nib), l1 = _mm512_loadu_si512(nib + 64);
    wq[0] = _mm512_and_si512(l0, m4);
    wq[1] = _mm512_and_si512(_mm512_srli_epi16(l0, 4), m4);
    wq[2] = _mm512_and_si512(l1, m4);
    wq[3] = _mm512_and_si512(_mm512_srli_epi16(l1, 4), m4);
}

/* Row j of a row block on its own (2-4 rows of x). */
AI void q4_k_rp1(const uint8_t *blk, int j, long cols, const uint8_t *prep, size_t pstride, int m,
                 float *y, long ldy, long r, const uint8_t *next) {
    const long nsb = cols / 256;
    __m512i pidx[4];
    q4_k_lane_index(pidx);
    __m512 acc[4][2];
    __m256 macc[4];
    for (int i = 0; i < m; i++) { acc[i][0] = acc[i][1] = _mm512_setzero_ps(); macc[i] = _mm256_setzero_ps(); }
    for (long s = 0; s < nsb; s++) {
        const uint8_t *g = blk + (size_t)s * 4 * 144;
        if (next) {
            prefetch_l2(next + (size_t)s * 4 * 144, 64);
            prefetch_l2(next + (size_t)s * 4 * 144 + 64 + 128 * (size_t)j, 128);
        }
        /* Row j's 8 scales and 8 mins: low nibbles in bytes 8j..8j+7 of the 32 (scales low,
         * mins high), top pairs in bytes 8 (j % 2)..+7 of the 16 at bits 2 (j / 2) and
         * 4 + 2 (j / 2). */
        uint64_t lo, top;
        memcpy(&lo, g + 16 + 8 * j, 8);
        memcpy(&top, g + 48 + 8 * (j & 1), 8);
        const uint64_t nib = 0x0F0F0F0F0F0F0F0Full, pair = 0x0303030303030303ull;
        const uint64_t sc = (lo & nib) | ((top >> (2 * (j >> 1))) & pair) << 4;
        const uint64_t mn = ((lo >> 4) & nib) | ((top >> (4 + 2 * (j >> 1))) & pair) << 4;
        const __m256 scf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc))),
                                         _mm256_set1_ps(h2f(g + 2 * j)));
        const __m256 mnf = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn))),
                                         _mm256_set1_ps(h2f(g + 8 + 2 * j)));
        __m512i wq[4];
        q4_k_unpack_rp(g + 64 + 128 * j, wq);
        q4_k_accumulate(wq, scf, mnf, pidx, prep, pstride, cols, s, m, acc, macc);
    }
    for (int i = 0; i < m; i++) y[i * ldy + r] = q4_k_result(acc[i][0], acc[i][1], macc[i]);
}

/* The 4 rows of a row block with one row of x. The products that q4_k_accumulate takes 8 lanes
 * at a time per row run 16 lanes at a time for two rows (rows 2p and 2p + 1 in the low and high
 * halves): the same lane-wise operations, so the same results. */
AI void q4_k_rp4(const uint8_t *blk, long cols, const uint8_t *prep, float *y, long r) {
    const long nsb = cols / 256, nb = cols / 32;
    __m512i pidx[2][4];
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 4; c++) {
            const int a = 8 * h + 2 * c, b = a + 1;
            pidx[h][c] = _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
        }
    /* Lanes of the 8 header f16 once widened (d of rows 0-3, dmin of rows 0-3): row 2p over
     * lanes 0-7, row 2p + 1 over lanes 8-15. */
    __m512i didx[2], midx[2];
    for (int p = 0; p < 2; p++) {
        const int a = 2 * p, b = a + 1;
        didx[p] = _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
        midx[p] = _mm512_add_epi32(didx[p], _mm512_set1_epi32(4));
    }
    __m512 acc[4][2], macc[2];
    for (int j = 0; j < 4; j++) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
    macc[0] = macc[1] = _mm512_setzero_ps();
    for (long s = 0; s < nsb; s++) {
        const uint8_t *g = blk + (size_t)s * 4 * 144;
        prefetch_span(g + DECODE_PREFETCH_BYTES, 4 * 144);
        const __m512 dd = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g)));
        const __m512i v = q4_k_header_values(g);
        const float *dx32 = (const float *)(prep + cols) + 8 * s, *xs32 = (const float *)(prep + cols) + nb + 8 * s;
        const __m512 dx2 = _mm512_broadcast_f32x8(_mm256_loadu_ps(dx32)), xs2 = _mm512_broadcast_f32x8(_mm256_loadu_ps(xs32));
        __m512 sl[2];
        for (int p = 0; p < 2; p++) {
            const __m128i sc = p ? _mm512_extracti32x4_epi32(v, 1) : _mm512_castsi512_si128(v);
            const __m128i mn = p ? _mm512_extracti32x4_epi32(v, 3) : _mm512_extracti32x4_epi32(v, 2);
            const __m512 scf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc)), _mm512_permutexvar_ps(didx[p], dd));
            const __m512 mnf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn)), _mm512_permutexvar_ps(midx[p], dd));
            sl[p] = _mm512_mul_ps(scf, dx2);
            macc[p] = _mm512_fmadd_ps(mnf, xs2, macc[p]);
        }
        __m512i xq[4];
        for (int c = 0; c < 4; c++) xq[c] = _mm512_loadu_si512(prep + 256 * s + 64 * c);
        for (int j = 0; j < 4; j++) {
            __m512i wq[4];
            q4_k_unpack_rp(g + 64 + 128 * j, wq);
            for (int c = 0; c < 4; c++) {
                const __m512i dots = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[c], xq[c]);
                acc[j][c & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(pidx[j & 1][c], sl[j / 2]),
                                                acc[j][c & 1]);
            }
        }
    }
    for (int j = 0; j < 4; j++) {
        const __m256 mt = (j & 1) ? _mm512_extractf32x8_ps(macc[j / 2], 1) : _mm512_castps512_ps256(macc[j / 2]);
        y[r + j] = q4_k_result(acc[j][0], acc[j][1], mt);
    }
}

/* Q4_K: whole row blocks of [r0, r1), the 4 rows together with one row of x, else one by one.
 * One by one, each row reads a quarter of every group of the block (the block's bytes are 4 rows
 * interleaved per group), a pattern the hardware prefetchers do not follow (measured on Zen 4,
 * one core: 2-4 rows of x against an 11008 x 4096 Q8_0 matrix read so took 7-14 times one row's
 * time): row j of a block asks for row j's bytes of the next block in L2, so that every byte of
 * the block after it is on its way (about one block ahead). The block after r1 is asked for too
 * (a prefetch never faults): callers usually go on there. */
static void q4_k_repacked(const uint8_t *w, size_t rb, long r0, long r1, long cols, const uint8_t *prep, int m,
                          float *y, long ldy) {
    const size_t ps = luhd_quant_vnni_k_row_stride(cols);
    for (long q = r0 / 4; q < r1 / 4; q++) {
        const uint8_t *blk = w + (size_t)q * 4 * rb;
        if (m == 1) {
            q4_k_rp4(blk, cols, prep, y, 4 * q);
            continue;
        }
        const uint8_t *next = blk + 4 * rb;
        for (int j = 0; j < 4; j++) {
            switch (m) {
            case 2: q4_k_rp1(blk, j, cols, prep, ps, 2, y, ldy, 4 * q + j, next); break;
            case 3: q4_k_rp1(blk, j, cols, prep, ps, 3, y, ldy, 4 * q + j, next); break;
            default: q4_k_rp1(blk, j, cols, prep, ps, 4, y, ldy, 4 * q + j, next); break;
            }
        }
    }
}


void luhd_quant_matvec_repacked(int format, const void *w, size_t row_bytes, long row_begin, long row_end, long cols,
                                const void *prepared, int m, float *y, long ldy) {
    if (m < 1 || m > 4 || row_end <= row_begin || row_begin % 4 != 0 || row_end % 4 != 0) return;
    const uint8_t *wb = (const uint8_t *)w, *prep = (const uint8_t *)prepared;
    switch (format) {
    case LUHD_QF_Q8_0: q8_0_repacked(wb, row_bytes, row_begin, row_end, cols, prep, m, y, ldy); break;
    case LUHD_QF_Q4_0: q4_0_repacked(wb, row_bytes, row_begin, row_end, cols, prep, m, y, ldy); break;
    case LUHD_QF_Q4_K: q4_k_repacked(wb, row_bytes, row_begin, row_end, cols, prep, m, y, ldy); break;
    default: break;
    }
}
#pragma clang attribute pop
