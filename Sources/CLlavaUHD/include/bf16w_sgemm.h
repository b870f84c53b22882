#ifndef CLLAVAUHD_BF16W_SGEMM_H
#define CLLAVAUHD_BF16W_SGEMM_H
/* Float32 matrix products y = x . W^T against BF16 weights W[n][k] (row-major, as stored in the
 * file) with AVX-512 FMA: every product and sum is float32 (a bf16 weight widens to float32
 * exactly), so this is the exact path's arithmetic without widening weight tiles into a buffer
 * for OpenBLAS (which then packs them, and x, again for every tile).
 *
 * x is packed once (luhd_bf16w_sgemm_pack_x) into panels of 32 rows: for each column j, the 32
 * rows' x[i][j] (rows past m are zero). luhd_bf16w_sgemm then computes any range of output
 * columns (weight rows) [n0, n1) for all m rows, widening each weight once into a packed block
 * while it runs, so callers split the weight rows over threads. Each output is summed in a
 * fixed order whatever the split, m or the other rows: one float32 fused-multiply-add chain
 * per block of LUHD_BF16W_SGEMM_KC columns, the blocks' sums added in order. */
#define LUHD_BF16W_SGEMM_KC 256
#include <stddef.h>
#include <stdint.h>

/* 1 if the CPU has AVX-512 F/BW/VL/DQ (and the OS saves the registers). */
int luhd_bf16w_sgemm_available(void);

/* Bytes of packed x for m rows of k columns (64-byte aligned buffer). */
size_t luhd_bf16w_sgemm_x_bytes(long k, long m);

/* Packs rows [i0, i1) of x (row stride ldx floats) into xp (the whole buffer for m rows). */
void luhd_bf16w_sgemm_pack_x(const float *x, long ldx, long k, long m, long i0, long i1, float *xp);

/* Bytes of the work buffer (64-byte aligned) that luhd_bf16w_sgemm needs for `count` output
 * columns and m rows: the widened weight block and the outputs' partial sums. */
size_t luhd_bf16w_sgemm_work_bytes(long count, long m);

/* y[i * ldy + r] = sum_j x[i][j] * W[r][j] for r in [n0, n1), i < m; W row r at w + r * ldw;
 * xp from luhd_bf16w_sgemm_pack_x for the same k and m; work of
 * luhd_bf16w_sgemm_work_bytes(n1 - n0, m) bytes, 64-byte aligned. */
void luhd_bf16w_sgemm(const uint16_t *w, long ldw, long n0, long n1, long k, const float *xp, long m,
                      float *y, long ldy, float *work);
#endif
