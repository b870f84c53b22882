#ifndef CLLAVAUHD_QUANT_KERNELS_H
#define CLLAVAUHD_QUANT_KERNELS_H
/* Block-quantized weights in GGML's byte layouts, and the kernels that read them.
 *
 * Formats are named by their GGML type ids (the numbers GGUF files store):
 *   F32 (0), F16 (1), BF16 (30)  dense, one element per 4 / 2 / 2 bytes;
 *   Q8_0 (8)   blocks of 32: f16 scale d, 32 x int8 q;            x = d * q
 *   Q4_0 (2)   blocks of 32: f16 scale d, 16 bytes of nibbles;     x = d * (q - 8)
 *              (byte j holds element j in its low nibble and element j + 16 in its high one)
 *   Q4_1 (3)   blocks of 32 (20 bytes): f16 d, f16 m, 16 bytes of nibbles as in Q4_0; x = d * q + m
 *   Q5_0 (6)   blocks of 32 (22 bytes): f16 d, u32 qh (bit j = 5th bit of element j), 16 bytes
 *              of nibbles as in Q4_0;                              x = d * (q - 16)
 *   Q5_1 (7)   blocks of 32 (24 bytes): f16 d, f16 m, u32 qh, 16 bytes of nibbles as Q5_0; x = d * q + m
 *   IQ4_NL (20) blocks of 32 (18 bytes): f16 d, 16 bytes of nibbles as Q4_0; x = d * K[q] with the
 *              non-linear table K = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53,
 *              69, 89, 113}
 *   Q2_K (10)  super-blocks of 256 (84 bytes): 16 bytes of 4-bit scale (low) / min (high) per
 *              sub-block of 16, 64 bytes of 2-bit q (element 128h + 32s + l in bits 2s of byte
 *              32h + l), f16 d, f16 dmin;                        x = (d * sc_j) * q - (dmin * m_j)
 *   Q3_K (11)  super-blocks of 256 (110 bytes): 32 bytes hmask (element 32i + l: bit i of byte l),
 *              64 bytes of 2-bit low parts as in Q2_K, 12 bytes of 6-bit scales (scale j: low
 *              nibble of byte j % 8, shifted by 4 for j >= 8, high 2 bits from byte 8 + j % 4 at
 *              bit 2 (j / 4)), f16 d;          x = (d * (sc_j - 32)) * (lo - (hmask bit ? 0 : 4))
 *   Q5_K (13)  super-blocks of 256 (176 bytes): f16 d, f16 dmin, 12 bytes of scales/mins as Q4_K,
 *              32 bytes qh (element 32i + l: bit i of byte l), 128 bytes of nibbles as Q4_K;
 *              x = (d * sc_j) * q - (dmin * m_j) with 5-bit q
 *   IQ4_XS (23) super-blocks of 256 (136 bytes): f16 d, u16 scale high bits (2 per sub-block of
 *              32), 4 bytes of scale low nibbles, 128 bytes: 16 per sub-block, nibbles as Q4_0;
 *              x = (d * (ls_j - 32)) * K[q]
 *   Q4_K (12)  super-blocks of 256 (144 bytes): f16 d, f16 dmin, 12 bytes of packed 6-bit
 *              scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles;
 *              x = (d * sc_j) * q - (dmin * m_j)
 *   Q6_K (14)  super-blocks of 256 (210 bytes): 128 bytes of low nibbles, 64 bytes of 2-bit
 *              high parts, 16 int8 scales (sub-blocks of 16), f16 d; x = (d * sc_j) * (q - 32)
 * (Formulas as GGML's reference dequantizers and the gguf Python package compute them, each
 * product and sum rounded to f32.)
 * A matrix is stored row-major with its blocks along the row (the input dimension), so a row of
 * `cols` elements takes cols / block_elements * block_bytes bytes.
 *
 * Matrix-vector products y[i][r] = sum_k W[r][k] * x[i][k] for 1..4 right-hand rows x[i] run
 * in two steps: luhd_quant_prepare() turns x into the form the kernel reads (block sums, or
 * int8 blocks for the integer kernels) once, then luhd_quant_matvec() computes any range of
 * output rows from it, so callers can split the rows over threads. Each output row is computed
 * by one call with a fixed summation order: results do not depend on how rows are split. */
#include <stddef.h>
#include <stdint.h>

enum {
    LUHD_QF_F32 = 0,
    LUHD_QF_F16 = 1,
    LUHD_QF_Q4_0 = 2,
    LUHD_QF_Q4_1 = 3,
    LUHD_QF_Q5_0 = 6,
    LUHD_QF_Q5_1 = 7,
    LUHD_QF_Q8_0 = 8,
    LUHD_QF_Q2_K = 10,
    LUHD_QF_Q3_K = 11,
    LUHD_QF_Q4_K = 12,
    LUHD_QF_Q5_K = 13,
    LUHD_QF_Q6_K = 14,
    LUHD_QF_IQ4_NL = 20,
    LUHD_QF_IQ4_XS = 23,
    LUHD_QF_BF16 = 30,
};

/* Kernel families. */
enum {
    /* Weights widened to f32 in registers and multiplied with f32 x (AVX2+FMA, the baseline). */
    LUHD_QK_F32_AVX2 = 0,
    /* The same with 512-bit vectors (AVX-512 F/BW/VL/DQ). */
    LUHD_QK_F32_AVX512 = 1,
    /* x quantized to int8 per 32-element block (dx = max|x| / 127, round to nearest even),
     * integer dot products with AVX-512 VNNI (and F/BW/VL/DQ), scales applied per block in f32
     * (every block format above). The result is W . x~ up to f32 rounding, where
     * x~ = dx * round(x / dx). */
    LUHD_QK_INT8_VNNI = 2,
    /* The same contract as LUHD_QK_INT8_VNNI (x quantized to int8 per 32-element block, exact
     * integer block dot products, W . x~ up to f32 rounding) with AVX2 vpmaddubsw / vpmaddwd
     * (and FMA, F16C), for CPUs without AVX-512 VNNI; Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL,
     * IQ4_XS and Q2_K-Q6_K (quant_matvec_int8_avx2.c). */
    LUHD_QK_INT8_AVX2 = 3,
};

/* Elements per block and bytes per block of a format; 0 when the format is not one of the above. */
int luhd_quant_block_elements(int format);
int luhd_quant_block_bytes(int format);

/* 1 if the CPU (and OS) can run the kernel family, else 0. */
int luhd_quant_kernel_available(int kernel);

/* Reference dequantization of n elements (n a multiple of the block size) to f32, with the
 * operations in the order given above, each rounded to f32 (no fused multiply-add), so the
 * result is bit-exact against any implementation of the same formulas. */
void luhd_quant_dequantize(int format, const void *src, long n, float *dst);

/* GGML's reference quantizers (round to nearest): Q8_0 d = max|x| / 127, q = roundf(x / d)
 * (ties away from zero); Q4_0 d = x_absmax_signed / -8, q = min(15, trunc(x / d + 8.5)).
 * n must be a multiple of 32. Non-finite inputs give a zero scale and zero quants. */
void luhd_quant_quantize_q8_0(const float *x, long n, void *dst);
void luhd_quant_quantize_q4_0(const float *x, long n, void *dst);

/* 1 if `kernel` implements `format` (F32 kernels: every format above; INT8_VNNI: every block
 * format; INT8_AVX2: every block format too). */
int luhd_quant_kernel_supports(int format, int kernel);

/* Bytes of scratch luhd_quant_prepare needs for m rows of `cols` elements (0: none needed). */
size_t luhd_quant_prepared_bytes(int format, int kernel, long cols, int m);

/* Prepares m (1..4) rows of x (row stride ldx floats) for the kernel. `scratch` must be
 * 64-byte aligned and luhd_quant_prepared_bytes() long. */
void luhd_quant_prepare(int format, int kernel, const float *x, long ldx, long cols, int m, void *scratch);

/* y[i * ldy + r] = sum_k W[r][k] * x[i][k] for r in [row_begin, row_end), i < m, where row r of
 * W starts at w + r * row_bytes, and x is the one given to luhd_quant_prepare (which also needs
 * it: the f32 kernels read x directly, so it must stay alive and unchanged). */
void luhd_quant_matvec(int format, int kernel, const void *w, size_t row_bytes, long row_begin, long row_end,
                       long cols, const float *x, long ldx, const void *prepared, int m, float *y, long ldy);

/* Row-interleaved copies for the int8 VNNI matrix-vector kernels (quant_repack.c): Q8_0, Q4_0
 * and Q4_K matrices whose row count is a multiple of 4 and row length a multiple of 256. The
 * copy has the same size as the stored matrix (rows * row_bytes); it holds the same bytes in
 * another order (4 rows interleaved per group of 256 weights, each group reordered for 64-byte
 * loads), made at load time in memory the caller owns.
 * luhd_quant_repack_supports: 1 if the format and shape can be repacked, else 0.
 * luhd_quant_repack_rows: writes rows [r0, r1) of the stored matrix `src` (row r at
 *   src + r * row_bytes) into their places in the copy `dst` (the whole copy's base). Calls on
 *   disjoint ranges of whole row blocks (r0 and r1 multiples of 4) may run on different threads
 *   (the 4 rows of a block share bytes of the copy).
 * luhd_quant_repack_rows_restore: the inverse for rows [r0, r1): writes them in the stored layout
 *   to dst (row r at dst + (r - r0) * row_bytes), e.g. for the prefill tiles or dequantization.
 * luhd_quant_repack_rows_restore_columns: the same for columns [k0, k1) only (multiples of 256,
 *   k1 <= cols): only those bytes of each dst row (at their stored offsets) are written.
 * luhd_quant_matvec_repacked: luhd_quant_matvec with LUHD_QK_INT8_VNNI on the copy (x prepared
 *   by luhd_quant_prepare with LUHD_QK_INT8_VNNI), for rows [row_begin, row_end), both multiples
 *   of 4 (else nothing is written); the results are bit-identical to luhd_quant_matvec on the
 *   stored matrix. Needs AVX-512 VNNI (luhd_quant_kernel_available(LUHD_QK_INT8_VNNI)). */
int luhd_quant_repack_supports(int format, long rows, long cols);
void luhd_quant_repack_rows(int format, const void *src, size_t row_bytes, long r0, long r1, long cols, void *dst);
void luhd_quant_repack_rows_restore_columns(int format, const void *repacked, size_t row_bytes, long r0, long r1,
                                            long k0, long k1, void *dst);
void luhd_quant_repack_rows_restore(int format, const void *repacked, size_t row_bytes, long r0, long r1, long cols,
                                    void *dst);
void luhd_quant_matvec_repacked(int format, const void *w, size_t row_bytes, long row_begin, long row_end, long cols,
                                const void *prepared, int m, float *y, long ldy);

/* Scale-grouped copies for the int8 AVX2 matrix-vector kernels (quant_repack_avx2.c): Q4_0,
 * IQ4_NL and Q8_0 matrices of any row count whose rows hold at least one group of 8 blocks
 * (cols >= 256, a multiple of 32), and IQ4_XS, Q3_K, Q4_K, Q5_K and Q6_K matrices (cols a multiple of 256). The copy has the stored matrix's
 * size and row offsets (row r at r * row_bytes); inside each group of 8 blocks of a row, the 8
 * f16 scales come first, side by side, then the quants in the pair order of the kernels; the
 * blocks after the last whole group keep the stored layout. Each Q4_K super-block keeps its
 * place, its 6-bit scales and mins re-packed and its nibbles in the pair order; each Q3_K, Q5_K
 * and Q6_K super-block too, its 3-, 5- or 6-bit weights re-packed into 256-bit runs in the pair
 * order (Q5_K's scales and mins as Q4_K's; Q3_K's and Q6_K's scales as stored); each IQ4_XS
 * super-block too, its 8 six-bit scales re-packed as one 48-bit field of signed values and its
 * index bytes in the pair order.
 * luhd_quant_grouped_supports: 1 if the format and row length can be grouped, else 0.
 * luhd_quant_grouped_rows: writes rows [r0, r1) of the stored matrix `src` into the copy `dst`
 *   (the whole copy's base); calls on disjoint row ranges may run on different threads.
 * luhd_quant_grouped_rows_restore_columns: the inverse for rows [r0, r1) and columns [k0, k1)
 *   (multiples of 32, of 256 for IQ4_XS, Q3_K, Q4_K, Q5_K and Q6_K, k1 <= cols): writes those blocks in the stored layout to dst (row r at
 *   dst + (r - r0) * row_bytes, each block at its stored offset), e.g. for the prefill tiles.
 * luhd_quant_matvec_grouped: luhd_quant_matvec with LUHD_QK_INT8_AVX2 on the copy (x prepared by
 *   luhd_quant_prepare with LUHD_QK_INT8_AVX2, m = 1..4) for rows [row_begin, row_end); the
 *   results are bit-identical to luhd_quant_matvec on the stored matrix. Needs AVX2, FMA and
 *   F16C (luhd_quant_kernel_available(LUHD_QK_INT8_AVX2)). Invalid arguments write nothing. */
int luhd_quant_grouped_supports(int format, long cols);
void luhd_quant_grouped_rows(int format, const void *src, size_t row_bytes, long r0, long r1, long cols, void *dst);
void luhd_quant_grouped_rows_restore_columns(int format, const void *grouped, size_t row_bytes, long r0, long r1, long k0,
                                             long k1, long cols, void *dst);
void luhd_quant_matvec_grouped(int format, const void *w, size_t row_bytes, long row_begin, long row_end, long cols,
                               const void *prepared, int m, float *y, long ldy);

/* Int8 matrix products for many rows of x (prefill) with AVX-512 VNNI, x quantized per block of
 * 32, for the block formats luhd_quant_gemm_supports names (1, else 0: every block format but the
 * K formats of luhd_quant_gemm_k_supports, below; see quant_gemm_vnni.c; another format writes
 * nothing). x is prepared once (luhd_quant_gemm_x_bytes(cols, m) bytes, 64-byte
 * aligned); then each call of luhd_quant_gemm_tile unpacks rows [n0, n0 + nr) (nr <= 32; more
 * are cut to 32) of W into `tile` (luhd_quant_gemm_tile_bytes(cols) bytes, 64-byte aligned, owned
 * by the calling thread) and writes y[i * ldy + n] for every i < m and n in the tile. Results are
 * W . x~ up to f32 rounding, x~ the int8 image of x as for LUHD_QK_INT8_VNNI, the same bits
 * whatever the tiling (nr, n0).
 * luhd_quant_gemm_tile_columns does the same over columns [k0, k1) of W and x only (multiples
 * of 32, 0 <= k0 < k1 <= cols, else nothing is written; the tile needs
 * luhd_quant_gemm_tile_bytes(k1 - k0) bytes), adding to y's values when `accumulate` is nonzero:
 * calls over consecutive column ranges, the first without `accumulate`, give the same bits as
 * one luhd_quant_gemm_tile call (the blocks are summed in the same order). x stays prepared for
 * all cols (xbuf as above); a weight tile is then unpacked once per range, and a range of x
 * small enough to stay in the cache serves every tile. Not thread-safe on one tile or y rows. */
int luhd_quant_gemm_supports(int format);
size_t luhd_quant_gemm_x_bytes(long cols, long m);
size_t luhd_quant_gemm_tile_bytes(long cols);
void luhd_quant_gemm_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf);
void luhd_quant_gemm_tile(int format, const void *w, size_t row_bytes, long n0, int nr, long cols,
                          const void *xbuf, long m, void *tile, float *y, long ldy);
void luhd_quant_gemm_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                  long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate);

/* luhd_quant_gemm_tile_columns reading W's row-interleaved copy (luhd_quant_repack_rows: the
 * copy's base as `repacked`, row_bytes and cols those of the stored matrix) instead of its stored
 * rows, so that prefill needs no restored rows: the same bits as luhd_quant_gemm_tile_columns on
 * the stored matrix. For the formats luhd_quant_gemm_repacked_supports names (Q8_0, Q4_0; 1, else
 * 0); n0 must be a multiple of 4 and cols of 256 (else nothing is written). */
int luhd_quant_gemm_repacked_supports(int format);
void luhd_quant_gemm_tile_columns_repacked(int format, const void *repacked, size_t row_bytes, long n0, int nr, long cols,
                                           long k0, long k1, const void *xbuf, long m, void *tile, float *y, long ldy,
                                           int accumulate);

/* The same product for Q4_K, Q5_K, Q6_K and Q3_K (luhd_quant_gemm_k_supports) with x quantized per
 * super-block of 256 instead of 32 (see quant_gemm_k_vnni.c): x prepared by
 * luhd_quant_gemm_k_prepare_x (luhd_quant_gemm_k_x_bytes(cols, m) bytes, 64-byte aligned; cols a
 * multiple of 256), the tile luhd_quant_gemm_k_tile_bytes(k1 - k0) bytes; the sub-block scales are
 * applied to exact integer sums and one f32 multiply-add a super-block remains. Results are
 * W . x~ up to f32 rounding, x~ = dx * round(x / dx) with dx = max|x| / 127 per 256 elements
 * (ties to even, clamped to +-127; a super-block holding a non-finite value gives NaN), the
 * same bits whatever the tiling (nr, n0) and column ranges (multiples of 256, as above: invalid
 * arguments or another format write nothing). Not thread-safe on one tile or y rows. */
int luhd_quant_gemm_k_supports(int format);
size_t luhd_quant_gemm_k_x_bytes(long cols, long m);
size_t luhd_quant_gemm_k_tile_bytes(long cols);
void luhd_quant_gemm_k_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf);
void luhd_quant_gemm_k_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                    long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate);

/* The same product with AVX2 (+FMA, F16C) for CPUs without AVX-512 VNNI (quant_gemm_avx2.c:
 * vpmaddubsw and vpmaddwd, exact int32 sums), for the formats luhd_quant_gemm_avx2_supports names
 * (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS; 1, else 0; another format writes nothing), with
 * the contract of luhd_quant_gemm_tile_columns: W . x~ up to f32 rounding, x~ = dx * round(x / dx)
 * per block of 32 (dx = max|x| / 127, ties to even, clamped to +-127; a block holding a
 * non-finite value gives NaN), the same bits whatever the tiling (nr <= 32, n0) and the column
 * ranges (multiples of 32, also inside IQ4_XS's super-blocks of 256; cols a multiple of the
 * format's block; invalid arguments write nothing; `accumulate` as there). x is
 * prepared by luhd_quant_gemm_avx2_prepare_x (signed int8 values, its own layout:
 * luhd_quant_gemm_avx2_x_bytes(cols, m) bytes, 64-byte aligned), the tile is
 * luhd_quant_gemm_avx2_tile_bytes(k1 - k0) bytes (64-byte aligned, owned by the calling thread).
 * Needs AVX2, FMA and F16C. Not thread-safe on one tile or y rows. */
int luhd_quant_gemm_avx2_supports(int format);
size_t luhd_quant_gemm_avx2_x_bytes(long cols, long m);
size_t luhd_quant_gemm_avx2_tile_bytes(long cols);
void luhd_quant_gemm_avx2_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf);
void luhd_quant_gemm_avx2_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                       long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate);

/* The per-256 product of luhd_quant_gemm_k_tile_columns (Q4_K, Q5_K, Q6_K, Q3_K, and Q2_K, which
 * the VNNI product takes per 32: luhd_quant_gemm_k_avx2_supports) with AVX2 (+FMA, F16C) for CPUs
 * without AVX-512 VNNI
 * (quant_gemm_k_avx2.c: vpmaddubsw of the unsigned quants by signed int8 x, the sub-block scales
 * applied by vpmaddwd to exact int32 sums), with its contract: W . x~ up to f32 rounding, x~ the
 * int8 image of x per 256 elements, the same bits whatever the tiling (nr <= 32, n0) and the
 * column ranges (multiples of 256; invalid arguments or another format write nothing;
 * `accumulate` as there). x is prepared by luhd_quant_gemm_k_avx2_prepare_x (signed int8
 * values, its own layout: luhd_quant_gemm_k_avx2_x_bytes(cols, m) bytes, 64-byte aligned; cols a
 * multiple of 256), the tile is luhd_quant_gemm_k_avx2_tile_bytes(k1 - k0) bytes (64-byte
 * aligned, owned by the calling thread). Needs AVX2, FMA and F16C. Not thread-safe on one tile
 * or y rows. */
int luhd_quant_gemm_k_avx2_supports(int format);
size_t luhd_quant_gemm_k_avx2_x_bytes(long cols, long m);
size_t luhd_quant_gemm_k_avx2_tile_bytes(long cols);
void luhd_quant_gemm_k_avx2_prepare_x(const float *x, long ldx, long cols, long m, void *xbuf);
void luhd_quant_gemm_k_avx2_tile_columns(int format, const void *w, size_t row_bytes, long n0, int nr, long cols, long k0,
                                         long k1, const void *xbuf, long m, void *tile, float *y, long ldy, int accumulate);

#endif
