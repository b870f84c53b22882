#ifndef CLLAVAUHD_PROJECTOR_KERNELS_H
#define CLLAVAUHD_PROJECTOR_KERNELS_H

#include <stdint.h>

/* Inner loops of the projector (VDIM and the Hiwin window pooling), in C so that they run at
 * full speed in every build configuration. Callers split the work across threads; every
 * output element is computed in an order that depends only on its own inputs and the sizes,
 * so the split never changes a result. Pointers need no particular alignment. */

/* JBU adaptive convolution, output rows y in [y0, y1) of a map `width` pixels wide:
 * out[y][x][c] = sum over t = i*d + j (i, j < d) of kernels[(y*width + x)*d*d + t] *
 * in[row_of[y + i]][col_of[x + j]][c], taps summed in order from zero with one fused
 * multiply-add each; row_of / col_of map padded coordinates to source rows / columns (reflect
 * padding). `blocked` is NULL, or, when `luhd_proj_adaptive_conv_uses_blocks(d, channels)`,
 * the whole input in the layout `luhd_proj_channel_blocks` makes: every pixel is then read from
 * it (strips of 8 pixels with AVX-512, of 6 with AVX2; same results) and `in` is not read (may be NULL). */
void luhd_proj_adaptive_conv_rows(const float *_Nullable in, const float *_Nullable blocked, long width,
                                  long channels, const float *_Nonnull kernels, long diameter,
                                  const int32_t *_Nonnull row_of, const int32_t *_Nonnull col_of,
                                  long y0, long y1, float *_Nonnull out);

/* Whether `luhd_proj_adaptive_conv_rows` takes a `blocked` input for this diameter and channel
 * count on this CPU (d = 7, channels a multiple of 32, AVX-512F or AVX2 + FMA). */
int luhd_proj_adaptive_conv_uses_blocks(long diameter, long channels);

/* Rows y in [y0, y1) of a [height, width, channels] map rearranged in blocks of 32 channels,
 * [height, channels/32, width, 32] (channels a multiple of 32). */
void luhd_proj_channel_blocks(const float *_Nonnull in, long width, long channels, long y0, long y1,
                              float *_Nonnull blocked);

/* PyTorch's bicubic resize (`TorchResample`, align_corners false, a = -0.75) of a
 * [height, w, channels] map, written in the blocked layout of `luhd_proj_channel_blocks`, in two
 * passes: horizontal, source rows y in [y0, y1) into rows [height, channels/32, ow, 32] (tap
 * columns ix[4*ox + k], weights wx[4*ox + k]); vertical, output rows oy in [oy0, oy1) of
 * [oh, channels/32, ow, 32] from those rows (tap rows iy[4*oy + k], weights wy[4*oy + k]). Per
 * value ((((0 + c0*s0) + c1*s1) + c2*s2) + c3*s3), nothing fused: the same values as the generic
 * passes of the [height, w, channels] layout (VectorKernels' bicubic_horizontal / _vertical)
 * followed by `luhd_proj_channel_blocks`, without the [oh, ow, channels] map and the pass that
 * rearranges it. Return 1, or 0 without writing anything when channels is not a multiple of 32
 * or the CPU lacks both AVX-512F and AVX2 + FMA. No allocation; thread-safe for disjoint output rows. */
int luhd_proj_bicubic_horizontal_blocked(const float *_Nonnull in, long y0, long y1, long w, long channels, long ow,
                                         const int32_t *_Nonnull ix, const float *_Nonnull wx,
                                         float *_Nonnull rows);
int luhd_proj_bicubic_vertical_blocked(const float *_Nonnull rows, long ow, long channels, long oy0, long oy1,
                                       const int32_t *_Nonnull iy, const float *_Nonnull wy, float *_Nonnull out);

/* JBU range x spatial kernel for output rows y in [y0, y1): for pixel p with 32-wide key
 * keys[p], logits[t] = tau * <keys[n_t], keys[p]> over the d*d neighbours n_t (row_of /
 * col_of as above), softmax over t (max subtracted), times spatial[t], divided by the sum
 * clamped at 1e-7. Writes out[p*d*d + t]. */
void luhd_proj_range_kernel_rows(const float *_Nonnull keys, long width, long diameter,
                                 const int32_t *_Nonnull row_of, const int32_t *_Nonnull col_of,
                                 float tau, const float *_Nonnull spatial, long y0, long y1,
                                 float *_Nonnull out);

/* RoIAlign cells [cell0, cell1): cell c owns samples start[c] .. start[c+1]-1, each with 4
 * pixel indices and 4 weights; out[(c - cell0)*out_stride + ch] = (sum over samples of
 * (w1*v1 + w2*v2 + w3*v3 + w4*v4)) / divisor[c], v = map[(pixel - first_pixel)*channels + ch],
 * weights multiplied by scale[pixel - first_pixel] when `scale` is not NULL. */
void luhd_proj_roi_cells(const float *_Nonnull map, long channels, long first_pixel,
                         const int32_t *_Nonnull start, const int32_t *_Nonnull pixels,
                         const float *_Nonnull weights, const float *_Nonnull divisor,
                         const float *_Nullable scale, long cell0, long cell1,
                         float *_Nonnull out, long out_stride);

/* Hiwin position pooling of cells [cell0, cell1), channels [c0, c1), in passes of
 * LUHD_PROJ_POSITION_LANES channels (the pass stays in cache between the resize and the pooling;
 * 128 measured best of 16-256, 4.3x the whole-row form for a 4x-level block):
 * the table resized along y from `horizontal` ([table rows, width, channels], each table row
 * already resized along x), pixel p = y*width + x being
 * luhd_proj_combine4(horizontal rows row_index[4y..4y+3] at x, row_weight + 4y), then `round`
 * (NULL: none) over the pass, then pooled as luhd_proj_roi_cells does (no scale) into
 * out[(c - cell0)*out_stride + channel]. Only pixels [first_pixel, first_pixel + pixel_count)
 * are resized: they must hold every pixel the cells' samples read. `scratch` holds
 * pixel_count * LUHD_PROJ_POSITION_LANES floats. Same results as resizing, rounding and pooling
 * whole rows. */
#define LUHD_PROJ_POSITION_LANES 128
void luhd_proj_position_pool(const float *_Nonnull horizontal, long width, long channels,
                             const int32_t *_Nonnull row_index, const float *_Nonnull row_weight,
                             void (*_Nullable round)(float *_Nonnull, long), const int32_t *_Nonnull start,
                             const int32_t *_Nonnull pixels, const float *_Nonnull weights,
                             const float *_Nonnull divisor, long first_pixel, long pixel_count, long cell0,
                             long cell1, long c0, long c1, float *_Nonnull scratch, float *_Nonnull out,
                             long out_stride);

/* out[i] = ((w0*s0[i] + w1*s1[i]) + w2*s2[i]) + w3*s3[i] (no fused multiply-add), i < n. */
void luhd_proj_combine4(const float *_Nonnull s0, const float *_Nonnull s1, const float *_Nonnull s2,
                        const float *_Nonnull s3, const float *_Nonnull w, long n, float *_Nonnull out);

/* row += sigma*bias; then row = (row - mean(row)) * gamma + beta, the mean summed in double. */
void luhd_proj_centre_normalise(float *_Nonnull row, long n, float sigma, const float *_Nonnull bias,
                                const float *_Nonnull gamma, const float *_Nonnull beta);

/* One key and value row of the window attention: value[i] = sample[i] and key[i] = sample[i] +
 * position[i] + embedding[i] (added in that order), i < n, in one pass over the
 * sample. When key and value are 32-byte aligned their whole vectors are written with
 * non-temporal stores (bypassing the cache; same values). No allocation; thread-safe for
 * disjoint outputs. */
void luhd_proj_key_value_row(const float *_Nonnull sample, const float *_Nonnull position,
                             const float *_Nonnull embedding, long n, float *_Nonnull key, float *_Nonnull value);

/* values[r][c] += scale * (projected[r][c] + bias[c]) for rows r in [r0, r1). */
void luhd_proj_add_scaled_rows(float *_Nonnull values, const float *_Nonnull projected,
                               const float *_Nonnull bias, long columns, float scale, long r0, long r1);

/* dst[c*rows + r] = src[r*cols + c] for rows r in [r0, r1). */
void luhd_proj_transpose_rows(const float *_Nonnull src, long rows, long cols, long r0, long r1,
                              float *_Nonnull dst);

/* Row-major c[i][j] = sum over t < k of a[i*lda + t] * b[t*ldb + j] for i < m, j < n, each
 * summed in t-order from zero with one fused multiply-add per term, with AVX-512F (tiles of
 * 8 rows x 32 columns, A and B read in place, C written once): for products with a small k
 * (the window attention's mixing and key-space queries), where a packing GEMM spends more on
 * packing and on passes over C than on the products. Returns 1, or 0 without computing
 * anything when the CPU lacks AVX-512 or k > 512 (the caller then uses sgemm). With `stream_c`
 * non-zero, C's whole 64-byte lines (c 64-byte aligned, ldc a multiple of 16) are written with
 * non-temporal stores, bypassing the cache: for a large C that is not read again soon (the
 * mixing's output; it saves reading each line before it is overwritten). Same values. */
int luhd_proj_small_k_product(long m, long n, long k, const float *_Nonnull a, long lda, const float *_Nonnull b,
                              long ldb, float *_Nonnull c, long ldc, int stream_c);

/* luhd_proj_small_k_product with B in BF16 (b[t*ldb + j] widened exactly to float32): the same
 * results as widening B first. Returns 0 under the same conditions. */
int luhd_proj_small_k_product_bf16(long m, long n, long k, const float *_Nonnull a, long lda,
                                   const uint16_t *_Nonnull b, long ldb, float *_Nonnull c, long ldc);

/* sum of a[i]*b[i] over i < n, in 8 interleaved float partial sums reduced in a fixed order. */
float luhd_proj_dot(const float *_Nonnull a, const float *_Nonnull b, long n);

#endif
