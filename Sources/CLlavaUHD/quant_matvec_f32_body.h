/* Body of the f32 matrix-vector kernels, written once with 16-float vector extensions and
 * compiled twice: quant_matvec_avx2.c (256-bit registers, the x86-64-v3 baseline) and
 * quant_matvec_avx512.c (512-bit registers). The including file defines KFN(name) to give the
 * functions distinct names.
 *
 * Every kernel widens a block of weights to f32, applies the block's scale (and offset) with a
 * multiply-add, and accumulates w * x into four independent accumulators per right-hand row
 * (two blocks or sub-blocks in flight, so the multiply-add latency is hidden); the accumulators
 * are added in a fixed order at the end of the row. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef float kvf __attribute__((vector_size(64)));
typedef int32_t kvi __attribute__((vector_size(64)));
typedef uint8_t kvu8 __attribute__((vector_size(16)));
typedef int8_t kvs8 __attribute__((vector_size(16)));

static inline __attribute__((always_inline)) kvf KFN(ldx)(const float *p) {
    kvf v;
    memcpy(&v, p, 64);
    return v;
}

static inline __attribute__((always_inline)) kvi KFN(zx16)(const uint8_t *p) {
    kvu8 b;
    memcpy(&b, p, 16);
    return __builtin_convertvector(b, kvi);
}

static inline __attribute__((always_inline)) kvf KFN(sx16f)(const uint8_t *p) {
    kvs8 b;
    memcpy(&b, p, 16);
    return __builtin_convertvector(b, kvf);
}

static inline __attribute__((always_inline)) float KFN(h2f)(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Lanes added pairwise in a fixed tree. */
static inline __attribute__((always_inline)) float KFN(hsum)(kvf v) {
    typedef float v8 __attribute__((vector_size(32)));
    typedef float v4 __attribute__((vector_size(16)));
    v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

#define KFINISH(M)                                                                  \
    for (int i = 0; i < (M); i++)                                                   \
        y[i * ldy + r] = KFN(hsum)((acc[i][0] + acc[i][1]) + (acc[i][2] + acc[i][3]));

/* acc[i][j] += w_j * x_i[j * step ..] for the m right-hand rows i, x_i = x + i * ldx (step 16:
 * four consecutive 16-float vectors; 32: the Q6_K layout's elements l, l + 32, l + 64, l + 96). */
static inline __attribute__((always_inline)) void KFN(accumulate4)(kvf acc[4][4], int m, const float *x, long ldx, int step,
                                                                  kvf w0, kvf w1, kvf w2, kvf w3) {
    for (int i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        acc[i][0] += w0 * KFN(ldx)(xi);
        acc[i][1] += w1 * KFN(ldx)(xi + step);
        acc[i][2] += w2 * KFN(ldx)(xi + 2 * step);
        acc[i][3] += w3 * KFN(ldx)(xi + 3 * step);
    }
}

/* Bytes of a block of the per-32 formats: f16 d (Q4_1, Q5_1: then f16 m), Q5_0 / Q5_1 a u32 of
 * fifth bits, then the quants (Q8_0 32 int8, the others 16 bytes of nibbles). */
static inline __attribute__((always_inline)) int KFN(block32_bytes)(int format) {
    switch (format) {
    case LUHD_QF_Q8_0: return 34;
    case LUHD_QF_Q4_0: return 18;
    case LUHD_QF_Q4_1: return 20;
    case LUHD_QF_Q5_0: return 22;
    default: return 24;   /* Q5_1 */
    }
}

/* The weights of a per-32 block b as two 16-float vectors (elements 0..15 and 16..31): Q8_0
 * w = q d; Q4_0 / Q4_1 w = q d + c with c = -8 d (Q4_0) or m (Q4_1), element j in the low nibble
 * of byte j, element j + 16 in its high nibble; Q5_0 / Q5_1 the same with the fifth bit of
 * element j (bit j of the u32) above its nibble and c = -16 d (Q5_0) or m (Q5_1). FORMAT is a
 * constant after inlining. */
static inline __attribute__((always_inline)) void KFN(block32)(int format, const uint8_t *b, kvf *w0, kvf *w1) {
    const float d = KFN(h2f)(b);
    if (format == LUHD_QF_Q8_0) {
        *w0 = KFN(sx16f)(b + 2) * d;
        *w1 = KFN(sx16f)(b + 18) * d;
        return;
    }
    const int five = format == LUHD_QF_Q5_0 || format == LUHD_QF_Q5_1;
    const float c = format == LUHD_QF_Q4_1 || format == LUHD_QF_Q5_1 ? KFN(h2f)(b + 2) : -((five ? 16.0f : 8.0f) * d);
    const uint8_t *qs = b + KFN(block32_bytes)(format) - 16;
    const kvi q = KFN(zx16)(qs);
    kvi lo = q & 15, hi = q >> 4;
    if (five) {
        typedef uint32_t kvu __attribute__((vector_size(64)));
        const kvu lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        uint32_t qh;
        memcpy(&qh, qs - 4, 4);
        const kvu h = (kvu){0} + qh;
        lo |= (kvi)(((h >> lanes) & 1) << 4);
        hi |= (kvi)(((h >> (lanes + 16)) & 1) << 4);
    }
    *w0 = __builtin_convertvector(lo, kvf) * d + c;
    *w1 = __builtin_convertvector(hi, kvf) * d + c;
}

/* Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 (KFN(block32)): two blocks per step; a trailing odd block is
 * handled alone. FORMAT is a constant after inlining. */
static inline __attribute__((always_inline)) void KFN(block32_rows)(int format, const uint8_t *w, size_t rb, long r0, long r1,
                                                                   long cols, const float *x, long ldx, int m,
                                                                   float *y, long ldy) {
    const long nb = cols / 32;
    const int bb = KFN(block32_bytes)(format);
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        kvf w0, w1, w2, w3;
        long k = 0;
        for (; k + 2 <= nb; k += 2, b += 2 * bb) {
            KFN(block32)(format, b, &w0, &w1);
            KFN(block32)(format, b + bb, &w2, &w3);
            KFN(accumulate4)(acc, m, x + k * 32, ldx, 16, w0, w1, w2, w3);
        }
        if (k < nb) {
            KFN(block32)(format, b, &w0, &w1);
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
            }
        }
        KFINISH(m)
    }
}

/* The eight 6-bit scales and mins of a Q4_K super-block, unpacked four bytes at a time:
 * scales 0..3 / mins 0..3 are the low 6 bits of bytes 0..3 / 4..7; scales 4..7 / mins 4..7 are
 * the low / high nibbles of bytes 8..11 with the top two bits of bytes 0..3 / 4..7 above them. */
static inline __attribute__((always_inline)) void KFN(q4k_unpack)(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t a, b, c;
    memcpy(&a, s, 4);
    memcpy(&b, s + 4, 4);
    memcpy(&c, s + 8, 4);
    const uint32_t s03 = a & 0x3F3F3F3Fu, m03 = b & 0x3F3F3F3Fu;
    const uint32_t s47 = (c & 0x0F0F0F0Fu) | ((a >> 2) & 0x30303030u);
    const uint32_t m47 = ((c >> 4) & 0x0F0F0F0Fu) | ((b >> 2) & 0x30303030u);
    memcpy(sc, &s03, 4);
    memcpy(sc + 4, &s47, 4);
    memcpy(mn, &m03, 4);
    memcpy(mn + 4, &m47, 4);
}

/* Q4_K: 144-byte super-blocks; each 32-byte run of nibbles holds sub-block 2c (low nibbles)
 * and 2c + 1 (high nibbles); w = (d sc) q - dmin m. */
static inline __attribute__((always_inline)) void KFN(q4_k_rows)(const uint8_t *w, size_t rb, long r0, long r1,
                                                                long cols, const float *x, long ldx, int m,
                                                                float *y, long ldy) {
    const long nb = cols / 256;
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        for (long k = 0; k < nb; k++, b += 144) {
            const float d = KFN(h2f)(b), dmin = KFN(h2f)(b + 2);
            uint8_t sc[8], mn[8];
            KFN(q4k_unpack)(b + 4, sc, mn);
            const uint8_t *q = b + 16;
            for (int c = 0; c < 4; c++, q += 32) {
                const float s1 = d * (float)sc[2 * c], m1 = dmin * (float)mn[2 * c];
                const float s2 = d * (float)sc[2 * c + 1], m2 = dmin * (float)mn[2 * c + 1];
                const kvi qa = KFN(zx16)(q), qb = KFN(zx16)(q + 16);
                const kvf w0 = __builtin_convertvector(qa & 15, kvf) * s1 - m1;
                const kvf w1 = __builtin_convertvector(qb & 15, kvf) * s1 - m1;
                const kvf w2 = __builtin_convertvector(qa >> 4, kvf) * s2 - m2;
                const kvf w3 = __builtin_convertvector(qb >> 4, kvf) * s2 - m2;
                KFN(accumulate4)(acc, m, x + k * 256 + c * 64, ldx, 16, w0, w1, w2, w3);
            }
        }
        KFINISH(m)
    }
}

/* Q6_K: 210-byte super-blocks of two halves of 128; in a half, byte l of the 64 low-nibble
 * bytes and of the 32 high-bit bytes gives elements l, l + 32, l + 64, l + 96 (6-bit, minus 32),
 * scaled by the int8 scale of their 16-element sub-block times d. */
static inline __attribute__((always_inline)) void KFN(q6_k_rows)(const uint8_t *w, size_t rb, long r0, long r1,
                                                                long cols, const float *x, long ldx, int m,
                                                                float *y, long ldy) {
    const long nb = cols / 256;
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        for (long k = 0; k < nb; k++, b += 210) {
            const float d = KFN(h2f)(b + 208);
            const int8_t *sc = (const int8_t *)(b + 192);
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
                for (int g = 0; g < 2; g++) {
                    const int is = 8 * h + g;
                    const kvi a = KFN(zx16)(ql + 16 * g), c = KFN(zx16)(ql + 32 + 16 * g), hb = KFN(zx16)(qh + 16 * g);
                    const float s1 = d * (float)sc[is], s2 = d * (float)sc[is + 2];
                    const float s3 = d * (float)sc[is + 4], s4 = d * (float)sc[is + 6];
                    const kvf w0 = __builtin_convertvector((a & 15) | ((hb & 3) << 4), kvf) * s1 - 32.0f * s1;
                    const kvf w1 = __builtin_convertvector((c & 15) | ((hb << 2) & 0x30), kvf) * s2 - 32.0f * s2;
                    const kvf w2 = __builtin_convertvector((a >> 4) | (hb & 0x30), kvf) * s3 - 32.0f * s3;
                    const kvf w3 = __builtin_convertvector((c >> 4) | ((hb >> 2) & 0x30), kvf) * s4 - 32.0f * s4;
                    KFN(accumulate4)(acc, m, x + k * 256 + h * 128 + 16 * g, ldx, 32, w0, w1, w2, w3);
                }
            }
        }
        KFINISH(m)
    }
}

/* The other block formats (IQ4_NL, Q2_K, Q3_K, Q5_K, IQ4_XS): each run of up to 256
 * weights is dequantized by the reference (luhd_quant_dequantize, exact f32) into a buffer that
 * stays in L1, and multiplied from there. */
static inline __attribute__((always_inline)) void KFN(generic_rows)(int format, const uint8_t *w, size_t rb, long r0, long r1,
                                                                   long cols, const float *x, long ldx, int m,
                                                                   float *y, long ldy) {
    const long be = luhd_quant_block_elements(format), bb = luhd_quant_block_bytes(format);
    float buf[256] __attribute__((aligned(64)));
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        for (long k0 = 0; k0 < cols; k0 += 256) {
            const long n = cols - k0 < 256 ? cols - k0 : 256;   /* a multiple of 32 */
            luhd_quant_dequantize(format, b + k0 / be * bb, n, buf);
            for (long j = 0; j < n; j += 32) {
                const kvf w0 = KFN(ldx)(buf + j), w1 = KFN(ldx)(buf + j + 16);
                for (int i = 0; i < m; i++) {
                    const float *xi = x + i * ldx + k0 + j;
                    acc[i][(j / 32) % 2 * 2] += w0 * KFN(ldx)(xi);
                    acc[i][(j / 32) % 2 * 2 + 1] += w1 * KFN(ldx)(xi + 16);
                }
            }
        }
        KFINISH(m)
    }
}

/* Dense F16 / BF16 / F32 rows, 64 elements per step. */
static inline __attribute__((always_inline)) kvf KFN(ld_dense)(int format, const uint8_t *p) {
    if (format == LUHD_QF_F32) {
        kvf v;
        memcpy(&v, p, 64);
        return v;
    }
    typedef uint16_t v16h __attribute__((vector_size(32)));
    v16h h;
    memcpy(&h, p, 32);
    if (format == LUHD_QF_BF16) {
        typedef uint32_t v16u __attribute__((vector_size(64)));
        v16u wide = __builtin_convertvector(h, v16u) << 16;
        kvf f;
        memcpy(&f, &wide, 64);
        return f;
    }
    typedef _Float16 v16f16 __attribute__((vector_size(32)));
    v16f16 hf;
    memcpy(&hf, &h, 32);
    return __builtin_convertvector(hf, kvf);
}

static inline __attribute__((always_inline)) void KFN(dense_rows)(int format, const uint8_t *w, size_t rb, long r0, long r1,
                                                                 long cols, const float *x, long ldx, int m,
                                                                 float *y, long ldy) {
    const int es = format == LUHD_QF_F32 ? 4 : 2;
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        long k = 0;
        for (; k + 64 <= cols; k += 64) {
            const kvf w0 = KFN(ld_dense)(format, b + k * es), w1 = KFN(ld_dense)(format, b + (k + 16) * es);
            const kvf w2 = KFN(ld_dense)(format, b + (k + 32) * es), w3 = KFN(ld_dense)(format, b + (k + 48) * es);
            KFN(accumulate4)(acc, m, x + k, ldx, 16, w0, w1, w2, w3);
        }
        for (int i = 0; i < m; i++) {
            float tail = 0.0f;
            for (long kk = k; kk < cols; kk++) {
                float wv;
                luhd_quant_dequantize(format, b + kk * es, 1, &wv);
                tail += wv * x[i * ldx + kk];
            }
            y[i * ldy + r] = KFN(hsum)((acc[i][0] + acc[i][1]) + (acc[i][2] + acc[i][3])) + tail;
        }
    }
}

/* Entry point: dispatches on the format and instantiates the row loops for m = 1..4 so the
 * inner loops over right-hand rows are unrolled (FORMAT, too, is a constant in each). */
static void KFN(matvec)(int format, const uint8_t *w, size_t rb, long r0, long r1, long cols,
                        const float *x, long ldx, int m, float *y, long ldy) {
#define KCASE(fn)                                                                \
    switch (m) {                                                                 \
    case 1: fn(w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;                   \
    case 2: fn(w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;                   \
    case 3: fn(w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;                   \
    default: fn(w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;                  \
    }
#define KCASE_FORMAT(fn, FORMAT)                                                 \
    switch (m) {                                                                 \
    case 1: fn(FORMAT, w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;           \
    case 2: fn(FORMAT, w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;           \
    case 3: fn(FORMAT, w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;           \
    default: fn(FORMAT, w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;          \
    }
    switch (format) {
    case LUHD_QF_Q8_0: KCASE_FORMAT(KFN(block32_rows), LUHD_QF_Q8_0) break;
    case LUHD_QF_Q4_0: KCASE_FORMAT(KFN(block32_rows), LUHD_QF_Q4_0) break;
    case LUHD_QF_Q4_1: KCASE_FORMAT(KFN(block32_rows), LUHD_QF_Q4_1) break;
    case LUHD_QF_Q5_0: KCASE_FORMAT(KFN(block32_rows), LUHD_QF_Q5_0) break;
    case LUHD_QF_Q5_1: KCASE_FORMAT(KFN(block32_rows), LUHD_QF_Q5_1) break;
    case LUHD_QF_Q4_K: KCASE(KFN(q4_k_rows)) break;
    case LUHD_QF_Q6_K: KCASE(KFN(q6_k_rows)) break;
    case LUHD_QF_IQ4_NL: case LUHD_QF_Q2_K: case LUHD_QF_Q3_K: case LUHD_QF_Q5_K: case LUHD_QF_IQ4_XS:
        KCASE_FORMAT(KFN(generic_rows), format) break;
    case LUHD_QF_F32: KCASE_FORMAT(KFN(dense_rows), LUHD_QF_F32) break;
    case LUHD_QF_F16: KCASE_FORMAT(KFN(dense_rows), LUHD_QF_F16) break;
    case LUHD_QF_BF16: KCASE_FORMAT(KFN(dense_rows), LUHD_QF_BF16) break;
    default: break;
    }
#undef KCASE_FORMAT
#undef KCASE
}
