#ifndef CLLAVAUHD_FULL_ATTENTION_H
#define CLLAVAUHD_FULL_ATTENTION_H
/* Attention without a mask (every query row sees every key: the CLIP ViT's heads) of one head in
 * one fused pass per group of query rows, with AVX2 + FMA: the scores of a group, their softmax
 * and the weighted values stay in a cache-resident work buffer instead of a tokens x tokens
 * matrix that leaves the L2 cache between the score product, the softmax and the value product.
 * Chosen at run time (luhd_full_attention_available): CPUs whose best vector kernels are the
 * AVX2 ones; AVX-512 CPUs keep their path.
 *
 * Arithmetic, per query row (the same whatever the other rows of its group, the thread or the
 * caller's split of heads over threads):
 *   score s_j = scale * (sum_c q[c] k_j[c]): one float32 fused multiply-add chain from zero over
 *     c in order, then one multiplication by scale;
 *   m = max_j s_j, e_j = exp(s_j - m) (float32, the `softmax` kernel's exp, 1-2 ulp), l = sum_j e_j
 *     (double lanes, as the `softmax` kernel);
 *   out[c] = (sum_j e_j v_j[c]) * (float)(1 / l): float32 fused multiply-add chains from zero over
 *     64 keys at a time in order, the chains' sums added in order (shorter chains than all n keys,
 *     as sgemm's blocking of k gives, for the rounding error).
 * A row of -inf scores gives zeros. */
#include <stddef.h>

/* Query rows per group (one micro-tile of the score and value products). */
#define LUHD_FULL_ATTENTION_ROWS 6

/* 1 if this CPU takes the kernel: its best vector kernels are the AVX2 ones. */
int luhd_full_attention_available(void);

/* Bytes of the work buffer for n keys of head size d: the keys packed in panels of 16 (n rounded
 * up to 16, times d floats), the values packed in column slices (n x d floats) and the scores of
 * one group (LUHD_FULL_ATTENTION_ROWS x n rounded up to 16), plus 64 bytes of slack for each of
 * the 3 aligned parts. */
size_t luhd_full_attention_work_bytes(long n, long d);

/* out[r * out_stride + c] for query rows r in [0, n) and c in [0, d) (d a positive multiple of 8),
 * from query row r at q[r * stride ..< + d], key j at k[j * stride ..< + d], value j at
 * v[j * stride ..< + d], j in [0, n), n >= 1. work: luhd_full_attention_work_bytes(n, d) bytes,
 * float aligned (the parts are aligned inside). Only call when luhd_full_attention_available() is
 * 1. Thread-safe for disjoint outputs and work buffers; inputs are only read. */
void luhd_full_attention(const float *q, const float *k, const float *v, long stride, long n, long d, float scale,
                         float *out, long out_stride, void *work);
#endif
