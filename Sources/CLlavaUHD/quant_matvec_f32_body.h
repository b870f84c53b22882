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

/* Q8_0: 34-byte blocks (f16 d, 32 int8). Two blocks per step; a trailing odd block is handled alone. */
static inline __attribute__((always_inline)) void KFN(q8_0_rows)(const uint8_t *w, size_t rb, long r0, long r1,
                                                                long cols, const float *x, long ldx, int m,
                                                                float *y, long ldy) {
    const long nb = cols / 32;
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        long k = 0;
        for (; k + 2 <= nb; k += 2, b += 68) {
            const float d0 = KFN(h2f)(b), d1 = KFN(h2f)(b + 34);
            const kvf w0 = KFN(sx16f)(b + 2) * d0, w1 = KFN(sx16f)(b + 18) * d0;
            const kvf w2 = KFN(sx16f)(b + 36) * d1, w3 = KFN(sx16f)(b + 52) * d1;
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
                acc[i][2] += w2 * KFN(ldx)(xi + 32);
                acc[i][3] += w3 * KFN(ldx)(xi + 48);
            }
        }
        if (k < nb) {
            const float d0 = KFN(h2f)(b);
            const kvf w0 = KFN(sx16f)(b + 2) * d0, w1 = KFN(sx16f)(b + 18) * d0;
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
            }
        }
        KFINISH(m)
    }
}

/* Q4_0: 18-byte blocks (f16 d, 16 bytes: element j in the low nibble of byte j, element j + 16
 * in its high nibble); w = q * d - 8 d. */
static inline __attribute__((always_inline)) void KFN(q4_0_rows)(const uint8_t *w, size_t rb, long r0, long r1,
                                                                long cols, const float *x, long ldx, int m,
                                                                float *y, long ldy) {
    const long nb = cols / 32;
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        long k = 0;
        for (; k + 2 <= nb; k += 2, b += 36) {
            const float d0 = KFN(h2f)(b), d1 = KFN(h2f)(b + 18);
            const kvi q0 = KFN(zx16)(b + 2), q1 = KFN(zx16)(b + 20);
            const kvf w0 = __builtin_convertvector(q0 & 15, kvf) * d0 - 8.0f * d0;
            const kvf w1 = __builtin_convertvector(q0 >> 4, kvf) * d0 - 8.0f * d0;
            const kvf w2 = __builtin_convertvector(q1 & 15, kvf) * d1 - 8.0f * d1;
            const kvf w3 = __builtin_convertvector(q1 >> 4, kvf) * d1 - 8.0f * d1;
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
                acc[i][2] += w2 * KFN(ldx)(xi + 32);
                acc[i][3] += w3 * KFN(ldx)(xi + 48);
            }
        }
        if (k < nb) {
            const float d0 = KFN(h2f)(b);
            const kvi q0 = KFN(zx16)(b + 2);
            const kvf w0 = __builtin_convertvector(q0 & 15, kvf) * d0 - 8.0f * d0;
            const kvf w1 = __builtin_convertvector(q0 >> 4, kvf) * d0 - 8.0f * d0;
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
            }
        }
        KFINISH(m)
    }
}

/* Q5_0: 22-byte blocks (f16 d, u32 qh holding the fifth bit of element j in bit j, 16 bytes
 * of nibbles as in Q4_0); w = q * d - 16 d. */
static inline __attribute__((always_inline)) void KFN(q5_0_rows)(const uint8_t *w, size_t rb, long r0, long r1,
                                                                long cols, const float *x, long ldx, int m,
                                                                float *y, long ldy) {
    const long nb = cols / 32;
    typedef uint32_t kvu __attribute__((vector_size(64)));
    const kvu lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#define KQ5_BLOCK(B, W0, W1)                                                             \
    kvf W0, W1;                                                                          \
    {                                                                                    \
        const float d = KFN(h2f)(B);                                                     \
        uint32_t qh;                                                                     \
        memcpy(&qh, (B) + 2, 4);                                                         \
        const kvu h = (kvu){} + qh;                                                      \
        const kvi q = KFN(zx16)((B) + 6);                                                \
        W0 = __builtin_convertvector((q & 15) | (kvi)(((h >> lanes) & 1) << 4), kvf) * d - 16.0f * d; \
        W1 = __builtin_convertvector((q >> 4) | (kvi)(((h >> (lanes + 16)) & 1) << 4), kvf) * d - 16.0f * d; \
    }
    for (long r = r0; r < r1; r++) {
        const uint8_t *b = w + (size_t)r * rb;
        kvf acc[4][4] = {{{0}}};
        long k = 0;
        for (; k + 2 <= nb; k += 2, b += 44) {
            KQ5_BLOCK(b, w0, w1)
            KQ5_BLOCK(b + 22, w2, w3)
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
                acc[i][2] += w2 * KFN(ldx)(xi + 32);
                acc[i][3] += w3 * KFN(ldx)(xi + 48);
            }
        }
        if (k < nb) {
            KQ5_BLOCK(b, w0, w1)
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k * 32;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
            }
        }
        KFINISH(m)
    }
#undef KQ5_BLOCK
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
                for (int i = 0; i < m; i++) {
                    const float *xi = x + i * ldx + k * 256 + c * 64;
                    acc[i][0] += w0 * KFN(ldx)(xi);
                    acc[i][1] += w1 * KFN(ldx)(xi + 16);
                    acc[i][2] += w2 * KFN(ldx)(xi + 32);
                    acc[i][3] += w3 * KFN(ldx)(xi + 48);
                }
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
                    for (int i = 0; i < m; i++) {
                        const float *xi = x + i * ldx + k * 256 + h * 128 + 16 * g;
                        acc[i][0] += w0 * KFN(ldx)(xi);
                        acc[i][1] += w1 * KFN(ldx)(xi + 32);
                        acc[i][2] += w2 * KFN(ldx)(xi + 64);
                        acc[i][3] += w3 * KFN(ldx)(xi + 96);
                    }
                }
            }
        }
        KFINISH(m)
    }
}

/* The other block formats (Q4_1, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K, IQ4_XS): each run of up to 256
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
            for (int i = 0; i < m; i++) {
                const float *xi = x + i * ldx + k;
                acc[i][0] += w0 * KFN(ldx)(xi);
                acc[i][1] += w1 * KFN(ldx)(xi + 16);
                acc[i][2] += w2 * KFN(ldx)(xi + 32);
                acc[i][3] += w3 * KFN(ldx)(xi + 48);
            }
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
 * inner loops over right-hand rows are unrolled. */
static void KFN(matvec)(int format, const uint8_t *w, size_t rb, long r0, long r1, long cols,
                        const float *x, long ldx, int m, float *y, long ldy) {
#define KCASE(fn)                                                                \
    switch (m) {                                                                 \
    case 1: fn(w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;                   \
    case 2: fn(w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;                   \
    case 3: fn(w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;                   \
    default: fn(w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;                  \
    }
    switch (format) {
    case LUHD_QF_Q8_0: KCASE(KFN(q8_0_rows)) break;
    case LUHD_QF_Q4_0: KCASE(KFN(q4_0_rows)) break;
    case LUHD_QF_Q5_0: KCASE(KFN(q5_0_rows)) break;
    case LUHD_QF_Q4_K: KCASE(KFN(q4_k_rows)) break;
    case LUHD_QF_Q6_K: KCASE(KFN(q6_k_rows)) break;
    case LUHD_QF_Q4_1: case LUHD_QF_Q5_1: case LUHD_QF_IQ4_NL: case LUHD_QF_Q2_K: case LUHD_QF_Q3_K:
    case LUHD_QF_Q5_K: case LUHD_QF_IQ4_XS:
        switch (m) {
        case 1: KFN(generic_rows)(format, w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;
        case 2: KFN(generic_rows)(format, w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;
        case 3: KFN(generic_rows)(format, w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;
        default: KFN(generic_rows)(format, w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;
        }
        break;
    case LUHD_QF_F32:
        switch (m) {
        case 1: KFN(dense_rows)(LUHD_QF_F32, w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;
        case 2: KFN(dense_rows)(LUHD_QF_F32, w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;
        case 3: KFN(dense_rows)(LUHD_QF_F32, w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;
        default: KFN(dense_rows)(LUHD_QF_F32, w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;
        }
        break;
    case LUHD_QF_F16:
        switch (m) {
        case 1: KFN(dense_rows)(LUHD_QF_F16, w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;
        case 2: KFN(dense_rows)(LUHD_QF_F16, w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;
        case 3: KFN(dense_rows)(LUHD_QF_F16, w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;
        default: KFN(dense_rows)(LUHD_QF_F16, w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;
        }
        break;
    case LUHD_QF_BF16:
        switch (m) {
        case 1: KFN(dense_rows)(LUHD_QF_BF16, w, rb, r0, r1, cols, x, ldx, 1, y, ldy); break;
        case 2: KFN(dense_rows)(LUHD_QF_BF16, w, rb, r0, r1, cols, x, ldx, 2, y, ldy); break;
        case 3: KFN(dense_rows)(LUHD_QF_BF16, w, rb, r0, r1, cols, x, ldx, 3, y, ldy); break;
        default: KFN(dense_rows)(LUHD_QF_BF16, w, rb, r0, r1, cols, x, ldx, 4, y, ldy); break;
        }
        break;
    default: break;
    }
#undef KCASE
}
