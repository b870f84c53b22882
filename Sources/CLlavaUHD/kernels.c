/* Run-time choice between the AVX-512 and AVX2 kernel tables (see include/kernels.h). */
#include "kernels.h"
#include "blas_loader.h"

const luhd_kernels *luhd_avx2_table(void);
const luhd_kernels *luhd_avx512_table(void);

static int has_avx2(void) {
    const luhd_cpu_features *f = luhd_cpu();
    return f->avx2 && f->fma && f->f16c;
}

static int has_avx512(void) {
    const luhd_cpu_features *f = luhd_cpu();
    return has_avx2() && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq;
}

const luhd_kernels *luhd_kernels_avx2(void) { return has_avx2() ? luhd_avx2_table() : NULL; }
const luhd_kernels *luhd_kernels_avx512(void) { return has_avx512() ? luhd_avx512_table() : NULL; }

const luhd_kernels *luhd_kernels_best(void) {
    /* The library is built for x86-64-v3, so the AVX2 table is the floor. */
    static const luhd_kernels *_Atomic best;
    const luhd_kernels *k = best;
    if (!k) {
        k = has_avx512() ? luhd_avx512_table() : luhd_avx2_table();
        best = k;
    }
    return k;
}
