#ifndef CLLAVAUHD_FLASH_ATTENTION_H
#define CLLAVAUHD_FLASH_ATTENTION_H
/* Causal attention of many query rows (prefill) in one fused pass per tile of query rows and
 * key/value head, with AVX-512 (chosen at run time: luhd_flash_attention_available). The keys
 * are taken in blocks of LUHD_FLASH_KEY_BLOCK positions at fixed absolute boundaries (0, 48,
 * 96, ...), each block widened once from the cache (F32, F16 or BF16, exactly) into a small
 * float32 block that every query head of the group and every query row of the tile then use;
 * the scores, their softmax and the weighted values never leave the cache-resident tile buffers
 * ("flash attention" with an online softmax). Blocks no query row of the tile sees are not read;
 * the causal mask is applied only in the blocks that hold masked positions.
 *
 * Arithmetic, per query row at position p (one vector lane per row: a row's arithmetic is the
 * same whatever the other rows of its tile, the tile's size, the thread or the caller's split):
 *   score s_j = scale * sum_c q[c] k_j[c]: one float32 fused multiply-add chain from zero per
 *     16 columns c in order, the chains' sums added in order, for every visible key j <= p;
 *   per key block, in block order: m' = max(m, max_j s_j) (m = -inf before the first block),
 *     corr = exp(m - m'), p_j = exp(s_j - m') (float32, the `softmax` kernel's exp, 1-2 ulp),
 *     l = l * corr + sum_j p_j (double, the block's p_j summed in order in double),
 *     o[c] = o[c] * corr + sum_j p_j v_j[c] (float32 fused multiply-adds over j in order);
 *   out[c] = o[c] * (float)(1 / l).
 * Masked positions (j > p) and blocks past p's own are exact no-ops for the row (their scores
 * are -inf, their products skipped by masked operations, corr = exp(0) = 1): each row's result
 * is a function of its query and of the keys and values at positions 0...p only, so the same
 * bits come out whatever the split of rows into calls and tiles, and on any number of threads. */
#include <stddef.h>
#include <stdint.h>

/* Query rows per tile (two sets of 48 rows, each 3 vectors of 16 lanes, that share every
 * widened key/value block) and keys per block. */
#define LUHD_FLASH_QUERY_ROWS 96
#define LUHD_FLASH_LANES 48
#define LUHD_FLASH_KEY_BLOCK 48

/* Storage of the cached keys and values. */
enum { LUHD_FLASH_KV_F32 = 0, LUHD_FLASH_KV_F16 = 1, LUHD_FLASH_KV_BF16 = 2 };

/* 1 if this CPU runs the kernel (AVX-512 F/BW/VL/DQ, as the AVX-512 vector kernels). */
int luhd_flash_attention_available(void);

/* Bytes of the work buffer (64-byte aligned) for head size d and `group` query heads per
 * key/value head. */
size_t luhd_flash_attention_work_bytes(long d, long group);

/* Query rows r in [0, rows) (tiles of LUHD_FLASH_QUERY_ROWS; one tile per call is the unit
 * callers spread over threads) at positions
 * first + r, the `group` query heads t of one key/value head. Row r, head t's query is
 * q[r * q_stride + t * d ..< + d], its output out[r * out_stride + t * d ..< + d]. Cached
 * position j's key is keys[j * stride ..< + d] and its value values[j * stride ..< + d] (elements
 * of `type`, already offset to the key/value head's columns); positions 0 ... first + rows - 1
 * must be stored. work: luhd_flash_attention_work_bytes(d, group) bytes, 64-byte aligned.
 * Only call when luhd_flash_attention_available() is 1. Thread-safe for disjoint outputs and
 * work buffers; inputs are only read. */
void luhd_flash_attention(int type, const void *keys, const void *values, long stride, long d, long group,
                          const float *q, long q_stride, long first, long rows, float scale, float *out,
                          long out_stride, void *work);
#endif
