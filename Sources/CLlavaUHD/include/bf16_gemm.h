#ifndef CLLAVAUHD_BF16_GEMM_H
#define CLLAVAUHD_BF16_GEMM_H
/* Matrix products y = x . W^T against BF16 weights W[n][k] (row-major, as stored in the file)
 * in bf16 arithmetic with AVX512_BF16 (vdpbf16ps): x is rounded to bf16 (nearest even) once,
 * products of bf16 pairs are summed in f32. For prefill, where float32 sgemm would first
 * widen every weight tile.
 *
 * x is packed once (luhd_bf16_gemm_pack_x) into panels of 32 rows: for each pair of columns
 * (2p, 2p + 1), 32 u32 holding the two bf16 values of each row (rows past m are zero). Then
 * luhd_bf16_gemm computes any range of output columns (weight rows) [n0, n1) for all m rows,
 * so callers split the weight rows over threads; each output is summed in a fixed order
 * (k in blocks of LUHD_BF16_GEMM_KC), independent of the split. k must be even. */
#include <stddef.h>
#include <stdint.h>

/* 1 if the CPU has AVX512_BF16 with AVX-512 F/BW/VL (and the OS saves the registers). */
int luhd_bf16_gemm_available(void);

/* Bytes of packed x for m rows of k columns (64-byte aligned buffer). */
size_t luhd_bf16_gemm_x_bytes(long k, long m);

/* Packs rows [i0, i1) of x (row stride ldx floats) into xp (the whole buffer for m rows). */
void luhd_bf16_gemm_pack_x(const float *x, long ldx, long k, long m, long i0, long i1, void *xp);

/* y[i * ldy + r] = sum_j bf16(x[i][j]) * W[r][j] for r in [n0, n1), i < m; W row r at w + r * ldw. */
void luhd_bf16_gemm(const uint16_t *w, long ldw, long n0, long n1, long k, const void *xp, long m,
                    float *y, long ldy);
#endif
