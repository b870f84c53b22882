#define _GNU_SOURCE
#include "blas_loader.h"
#include <cpuid.h>
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The CBLAS interface, declared here rather than taken from <cblas.h>: including OpenBLAS's
 * header would make the build link libopenblas (its pkg-config flags), which must not happen
 * (see blas_loader.h). The enum values are fixed by the CBLAS standard; Debian's OpenBLAS uses
 * 32-bit integers (blasint = int). */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*string_fn)(void);

static const char *const sonames[] = {"libopenblas.so.0", "libopenblas.so"};

/* The OpenBLAS beside the file holding this code (a wheel's bundled copy), "" when absent. */
static char bundled_path[4096];

static void find_bundled(void) {
    Dl_info info;
    bundled_path[0] = 0;
    if (!dladdr((void *)&find_bundled, &info) || !info.dli_fname) return;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) return;
    int n = snprintf(bundled_path, sizeof bundled_path, "%.*s/libopenblas.so.0", (int)(slash - info.dli_fname),
                     info.dli_fname);
    if (n <= 0 || (size_t)n >= sizeof bundled_path || access(bundled_path, R_OK) != 0) bundled_path[0] = 0;
}

/* The names tried in order: the bundled copy, then the system's sonames; NULL past the end. */
static const char *candidate(size_t i) {
    if (bundled_path[0]) {
        if (i == 0) return bundled_path;
        i--;
    }
    return i < sizeof sonames / sizeof sonames[0] ? sonames[i] : NULL;
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static int owns_threads;        /* we set OpenBLAS to one thread (our copy, not the host's) */
static char load_error[512];
static char coretype_note[160];
static char description[512];
static sgemm_fn p_sgemm;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static string_fn p_corename;
static string_fn p_config;
static atomic_int threads_set;   /* last count passed to openblas_set_num_threads, 0 = none */

/* ---------------------------------------------------------------------------------------- */
/* CPU features                                                                              */

static luhd_cpu_features features;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void detect_cpu(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    /* The OS must save YMM (XCR0 bits 1-2) for any AVX, and opmask/ZMM (bits 5-7) for AVX-512. */
    int ymm_ok = avx && (xcr0 & 0x6) == 0x6;
    int zmm_ok = ymm_ok && (xcr0 & 0xE6) == 0xE6;
    if (!ymm_ok) return;
    features.fma = fma;
    features.f16c = f16c;
    if (__get_cpuid_max(0, 0) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_subleaf = a;
    features.avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        features.avx512f = (b >> 16) & 1;
        features.avx512dq = (b >> 17) & 1;
        features.avx512bw = (b >> 30) & 1;
        features.avx512vl = (b >> 31) & 1;
        features.avx512_vnni = (c >> 11) & 1;
        features.avx512_fp16 = (d >> 23) & 1;
    }
    if (max_subleaf >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        features.avx_vnni = (a >> 4) & 1;
        if (zmm_ok) features.avx512_bf16 = (a >> 5) & 1;
    }
}

const luhd_cpu_features *luhd_cpu(void) {
    pthread_once(&cpu_once, detect_cpu);
    return &features;
}

/* The OpenBLAS kernel family for this CPU, by feature rather than by model number, so that
 * CPUs newer than the installed OpenBLAS still get their fast kernels. */
const char *luhd_blas_preferred_coretype(void) {
    const luhd_cpu_features *f = luhd_cpu();
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq) return f->avx512_bf16 ? "Cooperlake" : "SkylakeX";
    if (f->avx2 && f->fma) return "Haswell";
    return "";
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                   */

/* Resolves the symbols we use from `h`; returns 0 when all required ones exist. */
static int bind(void *h) {
    sgemm_fn sg = (sgemm_fn)dlsym(h, "cblas_sgemm");
    set_threads_fn st = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    get_threads_fn gt = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
    string_fn cn = (string_fn)dlsym(h, "openblas_get_corename");
    if (!sg || !st || !gt || !cn) {
        snprintf(load_error, sizeof load_error,
                 "the loaded libopenblas.so.0 lacks cblas_sgemm or the openblas_* thread/core functions");
        return -1;
    }
    p_sgemm = sg;
    p_set_threads = st;
    p_get_threads = gt;
    p_corename = cn;
    p_config = (string_fn)dlsym(h, "openblas_get_config");
    return 0;
}

/* Sets OPENBLAS_CORETYPE to `core` for one load and puts the environment back afterwards.
 * The variable goes into a copy of the environment array that `environ` points at during the
 * load; afterwards `environ` is the host's own array again, pointer for pointer. setenv would
 * instead move the array to the heap for good, and some runtimes find argv by walking back from
 * the original environment array (the statically linked Swift runtime does: a program linking
 * the library then saw no arguments). */
typedef struct saved_env {
    int changed;
    char **environment;   /* the host's array, restored as it was */
    char **replacement;   /* ours during the load, freed afterwards */
} saved_env;

extern char **environ;
/* "OPENBLAS_CORETYPE=<core>", the entry of the replacement array (one load at a time). */
static char coretype_entry[96];

/* Whether this process runs a single thread (the only state in which changing the environment
 * cannot race with a getenv of another thread). Unknown (no /proc) counts as not. */
static int process_is_single_threaded(void) {
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL)
        if (entry->d_name[0] != '.') count++;
    closedir(tasks);
    return count == 1;
}

static saved_env set_coretype(const char *core) {
    saved_env s = {0};
    if (!process_is_single_threaded()) {
        snprintf(coretype_note, sizeof coretype_note,
                 "; OPENBLAS_CORETYPE not set (threads were running), set OPENBLAS_CORETYPE=%s for the fast kernels", core);
        return s;
    }
    static const char key[] = "OPENBLAS_CORETYPE=";
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **copy = malloc((n + 2) * sizeof *copy);
    if (!copy) return s;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], key, sizeof key - 1) != 0) copy[k++] = environ[i];
    snprintf(coretype_entry, sizeof coretype_entry, "%s%s", key, core);
    copy[k++] = coretype_entry;
    copy[k] = NULL;
    s.changed = 1;
    s.environment = environ;
    s.replacement = copy;
    environ = copy;
    return s;
}

static void restore_coretype(saved_env s) {
    if (!s.changed) return;
    environ = s.environment;
    free(s.replacement);
}

static void *open_fresh(int new_namespace) {
    void *h = NULL;
    const char *name;
    for (size_t i = 0; (name = candidate(i)) != NULL && !h; i++)
        h = new_namespace ? dlmopen(LM_ID_NEWLM, name, RTLD_NOW | RTLD_LOCAL) : dlopen(name, RTLD_NOW | RTLD_LOCAL);
    return h;
}

static void do_load(void) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    int host_chose = env && env[0];           /* set-but-empty counts as unset */
    const char *preferred = luhd_blas_preferred_coretype();
    const char *note = "";

    find_bundled();
    void *h = NULL;
    const char *name;
    for (size_t i = 0; (name = candidate(i)) != NULL && !h; i++)
        h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);

    if (h) {
        /* The host loaded OpenBLAS first: its constructor has already chosen its kernels, and
         * its thread settings are the host's. Run a private copy, so that neither affects the
         * other. */
        saved_env saved = {0};
        if (!host_chose && preferred[0]) saved = set_coretype(preferred);
        void *mine = open_fresh(1);
        restore_coretype(saved);
        if (mine && bind(mine) == 0) {
            owns_threads = 1;
            note = "private copy; the host had loaded OpenBLAS";
        } else {
            if (mine) dlclose(mine);
            if (bind(h) != 0) return;
            load_error[0] = 0;
            note = "the host's OpenBLAS (a private copy could not be loaded)";
        }
    } else {
        saved_env saved = {0};
        if (!host_chose && preferred[0]) saved = set_coretype(preferred);
        h = open_fresh(0);
        restore_coretype(saved);
        if (!h) {
            const char *e = dlerror();
            snprintf(load_error, sizeof load_error,
                     "cannot load OpenBLAS (libopenblas.so.0; Debian package libopenblas0): %s",
                     e ? e : "unknown error");
            return;
        }
        if (bind(h) != 0) return;
        owns_threads = 1;
        note = host_chose ? "OPENBLAS_CORETYPE set by the host" : "kernels chosen from CPUID";
    }
    /* Our callers split products into fixed blocks and run them on their own threads, so that
     * results do not depend on a thread count; each OpenBLAS call then runs on one thread. The
     * host's own copy (the fallback of step 4) keeps its settings. */
    if (owns_threads) {
        p_set_threads(1);
        atomic_store(&threads_set, 1);
    }
    const char *config = p_config ? p_config() : NULL;
    const char *core = p_corename();
    snprintf(description, sizeof description, "%s; core %s (%s%s)", config ? config : "OpenBLAS",
             core ? core : "?", note, coretype_note);
    load_status = 0;
}

int luhd_blas_load(void) {
    pthread_once(&load_once, do_load);
    return load_status;
}

/* When the library is loaded into a process that still runs one thread (a program linking it,
 * or a host loading it before it starts threads), OpenBLAS is loaded right away, while the
 * environment can still be changed safely for the load. Later, only the first use loads it. */
__attribute__((constructor)) static void luhd_blas_load_early(void) {
    if (process_is_single_threaded()) (void)luhd_blas_load();
}

const char *luhd_blas_error(void) { return load_error; }
int luhd_blas_owns_threads(void) { return luhd_blas_load() == 0 && owns_threads; }
const char *luhd_blas_description(void) { return load_status == 0 ? description : ""; }

const char *luhd_blas_corename(void) {
    if (luhd_blas_load() != 0) return "";
    const char *n = p_corename();
    return n ? n : "";
}

void luhd_blas_set_threads(int n) {
    if (n < 1 || luhd_blas_load() != 0) return;
    if (atomic_exchange_explicit(&threads_set, n, memory_order_relaxed) == n) return;
    p_set_threads(n);
}

int luhd_blas_get_threads(void) { return luhd_blas_load() == 0 ? p_get_threads() : 0; }

/* ---------------------------------------------------------------------------------------- */
/* sgemm                                                                                     */

void luhd_sgemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0 ? 0 : beta * ci[j];
        for (int p = 0; p < k; p++) {
            float aip = alpha * (trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]);
            if (trans_b) {
                for (int j = 0; j < n; j++) ci[j] += aip * b[(size_t)j * ldb + p];
            } else {
                const float *bp = b + (size_t)p * ldb;
                for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    }
}

void luhd_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (luhd_blas_load() != 0) {
        luhd_sgemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    p_sgemm(CBLAS_ROW_MAJOR, trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS, trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS,
            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
