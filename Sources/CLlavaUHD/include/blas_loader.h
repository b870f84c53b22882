#ifndef CLLAVAUHD_BLAS_LOADER_H
#define CLLAVAUHD_BLAS_LOADER_H
#include <stddef.h>

/* OpenBLAS, opened with dlopen at first use.
 *
 * Debian's OpenBLAS 0.3.21 picks its kernels in a library constructor from
 * OPENBLAS_CORETYPE or, when unset, from CPUID; it mis-detects recent Intel cores (family 6
 * model 0xCF) as "Prescott" (SSE3, about 5x slower). Linking it would run that constructor
 * before any of our code. Instead, luhd_blas_load() sets OPENBLAS_CORETYPE from our own CPUID
 * check when the host has not set it, then dlopens libopenblas.so.0. If the host process had
 * already loaded OpenBLAS, its choice stands and luhd_blas_corename() reports it. */

/* Loads OpenBLAS once (thread-safe). Returns 0 on success; otherwise -1 and a message in
 * luhd_blas_error(). */
int luhd_blas_load(void);
const char *luhd_blas_error(void);
/* The kernel set OpenBLAS chose ("SkylakeX", "Haswell", ...), or "" before loading. */
const char *luhd_blas_corename(void);
/* What luhd_blas_load() set OPENBLAS_CORETYPE to, or "" if the host had set it / we did not. */
const char *luhd_blas_coretype_set(void);
void luhd_blas_set_threads(int n);
int luhd_blas_get_threads(void);

/* Row-major C[M×N] = alpha·op(A)·op(B) + beta·C with op = transpose when trans_* != 0.
 * Requires a successful luhd_blas_load(). */
void luhd_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* CPU features the kernels dispatch on (CPUID, checked once). */
typedef struct luhd_cpu_features {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16, avx512_fp16, avx_vnni;
} luhd_cpu_features;
const luhd_cpu_features *luhd_cpu(void);
#endif
