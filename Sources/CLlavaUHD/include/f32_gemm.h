#ifndef CLLAVAUHD_F32_GEMM_H
#define CLLAVAUHD_F32_GEMM_H
/* Float32 matrix products y = x . W^T against a weight W[n][k] packed once per call (the
 * widening of F16/BF16 weights to float32 writes the packed layout directly), with AVX-512.
 *
 * Packed W: panels of LUHD_F32_GEMM_NR = 32 output columns; panel p holds, for each column j
 * of x (0 <= j < k), the 32 weights W[32p + l][j] (l = 0..31) contiguous; columns past n are
 * zero. x is packed per block (14 rows x KC columns, interleaved) into a caller's buffer. The
 * micro-kernel multiplies 14 rows of x by one panel: 28 accumulators, 2 vector loads and 14
 * broadcasts per 28 multiply-adds.
 *
 * Every output is one chain of fused multiply-adds over j = 0, 1, ..., k-1 in order (starting
 * from 0; blocks of j continue from the partial sum stored in y), so results do not depend on
 * how callers split rows or panels over threads, nor on the blocking. */
#include <stddef.h>
#include <stdint.h>

#ifndef LUHD_F32_GEMM_NR
#define LUHD_F32_GEMM_NR 32
#endif

/* 1 if the CPU has AVX-512 F (and the OS saves the registers). */
int luhd_f32_gemm_available(void);

/* Floats of the packed form of a weight with n rows of k columns. */
size_t luhd_f32_gemm_packed_floats(long k, long n);

/* Packs panels [p0, p1) of W (n rows of k values, row stride ldw) into wp (the whole packed
 * buffer, 64-byte aligned): dtype 0 = float32, 1 = float16 (IEEE half), 2 = bfloat16. */
void luhd_f32_gemm_pack_w(const void *w, int dtype, long ldw, long k, long n, long p0, long p1, float *wp);

/* As luhd_f32_gemm_pack_w for a float32 weight stored transposed: W[c][j] at w[j * ldw + c]
 * (the right-hand matrix of x . B with B [k][n] row-major). */
void luhd_f32_gemm_pack_wt(const float *w, long ldw, long k, long n, long p0, long p1, float *wp);

/* Floats of the buffer luhd_f32_gemm packs blocks of `rows` rows of x into (64-byte aligned,
 * the calling thread's own). */
size_t luhd_f32_gemm_x_floats(long rows);

/* y[i * ldy + c] = sum_j x[i * ldx + j] * W[c][j] for rows i in [m0, m1) and columns c in
 * panels [p0, p1) (c < n), from the packed wp. xbuf: luhd_f32_gemm_x_floats(m1 - m0) floats that blocks of x are packed
 * into, or NULL to read x in place (for a row stride that is not a multiple of 1 KB: 14 rows a
 * multiple of 4 KB apart would share one L1 set). */
void luhd_f32_gemm(const float *x, long ldx, long m0, long m1, const float *wp, long k, long n, long p0, long p1,
                   float *y, long ldy, float *xbuf);
#endif
