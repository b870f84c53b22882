#define _GNU_SOURCE
#include "blas_loader.h"
#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The CBLAS interface, declared here rather than taken from <cblas.h>: including OpenBLAS's
 * header would make the build link libopenblas (its pkg-config flags), which must not happen
 * (see blas_loader.h). The enum values are fixed by the CBLAS standard; Debian's OpenBLAS uses
 * 32-bit integers (blasint = int). */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*corename_fn)(void);

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static char load_error[512];
static char coretype_set[32];
static sgemm_fn p_sgemm;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static corename_fn p_corename;

static luhd_cpu_features features;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void detect_cpu(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1;
    features.fma = (c >> 12) & 1;
    features.f16c = (c >> 29) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    int ymm_ok = (xcr0 & 0x6) == 0x6;
    int zmm_ok = (xcr0 & 0xE6) == 0xE6;
    if (!ymm_ok) { features.fma = 0; features.f16c = 0; return; }
    if (__get_cpuid_max(0, 0) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    features.avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        features.avx512f = (b >> 16) & 1;
        features.avx512dq = (b >> 17) & 1;
        features.avx512bw = (b >> 30) & 1;
        features.avx512vl = (b >> 31) & 1;
        features.avx512_vnni = (c >> 11) & 1;
        features.avx512_fp16 = (d >> 23) & 1;
    }
    __cpuid_count(7, 1, a, b, c, d);
    features.avx_vnni = (a >> 4) & 1;
    if (zmm_ok) features.avx512_bf16 = (a >> 5) & 1;
}

const luhd_cpu_features *luhd_cpu(void) {
    pthread_once(&cpu_once, detect_cpu);
    return &features;
}

/* The OpenBLAS kernel family for this CPU, by feature rather than by model number, so that
 * CPUs newer than the installed OpenBLAS still get their fast kernels. */
static const char *coretype_for_cpu(void) {
    const luhd_cpu_features *f = luhd_cpu();
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq)
        return f->avx512_bf16 ? "Cooperlake" : "SkylakeX";
    if (f->avx2 && f->fma) return "Haswell";
    return NULL;
}

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p && load_error[0] == 0) snprintf(load_error, sizeof load_error, "OpenBLAS lacks symbol %s", name);
    return p;
}

static void do_load(void) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env == NULL) {
        const char *core = coretype_for_cpu();
        /* Only a host that has not loaded OpenBLAS yet is affected by this. */
        void *already = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
        if (already) {
            dlclose(already);
        } else if (core) {
            setenv("OPENBLAS_CORETYPE", core, 0);
            snprintf(coretype_set, sizeof coretype_set, "%s", core);
        }
    }
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error,
                 "cannot load OpenBLAS (libopenblas.so.0; Debian package libopenblas0): %s", e ? e : "unknown error");
        return;
    }
    p_sgemm = (sgemm_fn)sym(h, "cblas_sgemm");
    p_set_threads = (set_threads_fn)sym(h, "openblas_set_num_threads");
    p_get_threads = (get_threads_fn)sym(h, "openblas_get_num_threads");
    p_corename = (corename_fn)sym(h, "openblas_get_corename");
    if (!p_sgemm || !p_set_threads || !p_get_threads || !p_corename) return;
    load_status = 0;
}

int luhd_blas_load(void) {
    pthread_once(&load_once, do_load);
    return load_status;
}

const char *luhd_blas_error(void) { return load_error; }
const char *luhd_blas_coretype_set(void) { return coretype_set; }

const char *luhd_blas_corename(void) {
    if (load_status != 0) return "";
    const char *n = p_corename();
    return n ? n : "";
}

void luhd_blas_set_threads(int n) {
    if (load_status == 0 && n > 0) p_set_threads(n);
}

int luhd_blas_get_threads(void) { return load_status == 0 ? p_get_threads() : 0; }

void luhd_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    p_sgemm(CBLAS_ROW_MAJOR, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS, trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS,
            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
