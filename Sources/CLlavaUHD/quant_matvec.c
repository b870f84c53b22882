/* Dispatch of the quantized matrix-vector kernels (quant_kernels.h) and a memory-read probe. */
#include "quant_kernels.h"
#include <immintrin.h>

void luhd_quant_matvec_f32_avx2(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                const float *x, long ldx, int m, float *y, long ldy);
void luhd_quant_matvec_f32_avx512(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                  const float *x, long ldx, int m, float *y, long ldy);
size_t luhd_quant_vnni_k_row_stride(long cols);
size_t luhd_quant_vnni_g8_row_stride(long cols);
void luhd_quant_prepare_vnni_q8_0(const float *x, long ldx, long cols, int m, void *scratch);
void luhd_quant_prepare_vnni_q4_0(const float *x, long ldx, long cols, int m, void *scratch);
void luhd_quant_prepare_vnni_k(const float *x, long ldx, long cols, int m, void *scratch);
void luhd_quant_matvec_vnni(int format, const void *w, size_t rb, long r0, long r1, long cols,
                            const void *prepared, int m, float *y, long ldy);
size_t luhd_quant_avx2_row_stride(long cols);
int luhd_quant_int8_avx2_supports(int format);
void luhd_quant_prepare_int8_avx2(const float *x, long ldx, long cols, int m, void *scratch);
void luhd_quant_matvec_int8_avx2(int format, const void *w, size_t rb, long r0, long r1, long cols,
                                 const void *prepared, int m, float *y, long ldy);

int luhd_quant_kernel_supports(int format, int kernel) {
    if (luhd_quant_block_elements(format) == 0) return 0;
    switch (kernel) {
    case LUHD_QK_F32_AVX2: case LUHD_QK_F32_AVX512: return 1;
    case LUHD_QK_INT8_VNNI: return luhd_quant_block_elements(format) > 1;
    case LUHD_QK_INT8_AVX2: return luhd_quant_int8_avx2_supports(format);
    default: return 0;
    }
}

size_t luhd_quant_prepared_bytes(int format, int kernel, long cols, int m) {
    if (kernel == LUHD_QK_INT8_AVX2 && luhd_quant_kernel_supports(format, kernel))
        return luhd_quant_avx2_row_stride(cols) * (size_t)m;
    if (kernel != LUHD_QK_INT8_VNNI || !luhd_quant_kernel_supports(format, kernel)) return 0;
    if (format == LUHD_QF_Q8_0 || format == LUHD_QF_Q4_0) return luhd_quant_vnni_g8_row_stride(cols) * (size_t)m;
    return luhd_quant_vnni_k_row_stride(cols) * (size_t)m;
}

void luhd_quant_prepare(int format, int kernel, const float *x, long ldx, long cols, int m, void *scratch) {
    if (kernel == LUHD_QK_INT8_AVX2 && luhd_quant_kernel_supports(format, kernel)) {
        luhd_quant_prepare_int8_avx2(x, ldx, cols, m, scratch);
        return;
    }
    if (kernel != LUHD_QK_INT8_VNNI || !luhd_quant_kernel_supports(format, kernel)) return;
    if (format == LUHD_QF_Q8_0) luhd_quant_prepare_vnni_q8_0(x, ldx, cols, m, scratch);
    else if (format == LUHD_QF_Q4_0) luhd_quant_prepare_vnni_q4_0(x, ldx, cols, m, scratch);
    else luhd_quant_prepare_vnni_k(x, ldx, cols, m, scratch);
}

void luhd_quant_matvec(int format, int kernel, const void *w, size_t row_bytes, long row_begin, long row_end,
                       long cols, const float *x, long ldx, const void *prepared, int m, float *y, long ldy) {
    if (m < 1 || m > 4 || row_end <= row_begin) return;
    switch (kernel) {
    case LUHD_QK_F32_AVX512:
        luhd_quant_matvec_f32_avx512(format, w, row_bytes, row_begin, row_end, cols, x, ldx, m, y, ldy);
        break;
    case LUHD_QK_INT8_VNNI:
        luhd_quant_matvec_vnni(format, w, row_bytes, row_begin, row_end, cols, prepared, m, y, ldy);
        break;
    case LUHD_QK_INT8_AVX2:
        luhd_quant_matvec_int8_avx2(format, w, row_bytes, row_begin, row_end, cols, prepared, m, y, ldy);
        break;
    default:
        luhd_quant_matvec_f32_avx2(format, w, row_bytes, row_begin, row_end, cols, x, ldx, m, y, ldy);
        break;
    }
}
