#ifndef CLLAVAUHD_BLAS_LOADER_H
#define CLLAVAUHD_BLAS_LOADER_H

#include <stddef.h>

/* OpenBLAS, opened with dlopen at first use, with its fast kernels whatever the host did.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernel set once, in its library
 * constructor, from OPENBLAS_CORETYPE or, when that is unset, from its own CPUID table; that
 * table mis-detects recent Intel cores (family 6 model 0xCF) as "Prescott" (SSE3, about 5x
 * slower). Linking it would run the constructor before any of our code, so it is never linked.
 * luhd_blas_load():
 *   1. chooses a kernel set from our own CPUID check, by feature rather than model number:
 *      AVX-512 F/BW/VL/DQ -> "Cooperlake" (with AVX512_BF16) or "SkylakeX"; AVX2+FMA -> "Haswell";
 *   2. if the host has set OPENBLAS_CORETYPE to a non-empty value, respects it;
 *   3. otherwise, if no OpenBLAS is loaded in the process yet, sets OPENBLAS_CORETYPE to the
 *      choice, dlopens libopenblas.so.0 and restores the environment as it was;
 *   4. if the host had already loaded libopenblas.so.0 (e.g. through Debian's libblas.so.3,
 *      numpy, R), whose constructor has chosen for itself (possibly "Prescott"), loads a private
 *      copy in a new link-map namespace (dlmopen) as in 3, so that neither the host's kernel
 *      choice nor its thread settings affect ours and ours do not affect the host; if that
 *      fails, it uses the host's copy as it is and says so in luhd_blas_description();
 *   5. sets its own copy (3 or 4) to one thread per call (see luhd_blas_owns_threads). A host
 *      that loads libopenblas.so.0 after us shares that copy and setting (and may call
 *      openblas_set_num_threads itself).
 * "libopenblas.so.0" in steps 3 and 4 is first the copy beside the library holding this code
 * (found with dladdr: the Python wheel carries one there, see scripts/build-wheel.sh), then
 * the system's (libopenblas.so.0, libopenblas.so on the loader's search path).
 * The environment is modified only for the duration of the load, and only while the process
 * runs a single thread: setenv/unsetenv race with a getenv in any other thread of the host. So
 * the library loads OpenBLAS from its constructor when the process is single-threaded at that
 * point (a program linking the library, a host that loads it before starting threads); in a
 * host that is already multi-threaded when OpenBLAS is first needed, the environment is left
 * alone and OpenBLAS picks its kernels itself (luhd_blas_description() says so and names the
 * OPENBLAS_CORETYPE value a host can set before it starts threads to get the fast kernels). */

/* Loads OpenBLAS once (thread-safe, idempotent). Returns 0 on success; otherwise -1 and a
 * message in luhd_blas_error(). */
int luhd_blas_load(void);
const char *luhd_blas_error(void);

/* The kernel set OpenBLAS uses ("SkylakeX", "Cooperlake", "Haswell", ...), "" if not loaded. */
const char *luhd_blas_corename(void);

/* One line for logs and benchmarks: OpenBLAS's configuration string, its kernel set and how it
 * was chosen. "" before loading. */
const char *luhd_blas_description(void);

/* 1 when the OpenBLAS in use is ours (loaded by luhd_blas_load, fresh or as a private copy):
 * it is then set to run each call on one thread, and callers parallelise over fixed blocks of
 * the product (see BLAS.sgemm), which keeps results independent of thread counts. 0 when it is
 * the host's copy (whose settings are left alone) or not loaded. */
int luhd_blas_owns_threads(void);

/* OpenBLAS's own thread count (process-wide for the copy we use). Setting is skipped when the
 * count is already the requested one; n < 1 is ignored. Benchmarks only: the library keeps its
 * own copy at 1. */
void luhd_blas_set_threads(int n);
int luhd_blas_get_threads(void);

/* Row-major C[M×N] = alpha·op(A)·op(B) + beta·C with op = transpose when trans_* != 0.
 * Loads OpenBLAS if needed; if it cannot be loaded, computes the same product with a plain C
 * loop (correct, slow) instead of crashing. */
void luhd_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* The plain C product luhd_sgemm falls back to (exposed for tests). */
void luhd_sgemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* CPU features the kernels dispatch on (CPUID and XCR0, checked once). */
typedef struct luhd_cpu_features {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16, avx512_fp16, avx_vnni;
} luhd_cpu_features;
const luhd_cpu_features *luhd_cpu(void);

/* The OpenBLAS kernel set chosen for this CPU ("Cooperlake", "SkylakeX", "Haswell"), or "" when
 * the CPU has no AVX2 (OpenBLAS's own detection is then used). */
const char *luhd_blas_preferred_coretype(void);

#endif
