/* Arithmetic peak loops (see include/peak_loops.h). */
#include "peak_loops.h"
#include "blas_loader.h"
#include <immintrin.h>

/* Results are stored here so the loops are not optimised away. */
static volatile float sink_f;
static volatile int sink_i;

#define ACCUMULATORS 12

__attribute__((target("avx512f"))) static double fma_f32_512(long n) {
    __m512 a[ACCUMULATORS], x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
        __asm__ volatile("" : "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
    __m512 s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm512_add_ps(s, a[i]);
    sink_f = _mm512_reduce_add_ps(s);
    return (double)n * ACCUMULATORS * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_f32_256(long n) {
    __m256 a[ACCUMULATORS], x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]));
        __asm__ volatile("" : "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]), "+x"(a[11]));
    }
    __m256 s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    sink_f = out[0];
    return (double)n * ACCUMULATORS * 8 * 2;
}

double luhd_peak_fma_f32(long n) {
    const luhd_cpu_features *f = luhd_cpu();
    if (f->avx512f) return fma_f32_512(n);
    if (f->avx2 && f->fma) return fma_f32_256(n);
    return 0;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512fp16"))) static double fma_f16_512(long n) {
    __m512h a[ACCUMULATORS], x = _mm512_set1_ph((_Float16)0.999f), y = _mm512_set1_ph((_Float16)1e-3f);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_set1_ph((_Float16)(i * 0.01f));
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_fmadd_ph(a[i], x, y);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
        __asm__ volatile("" : "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
    __m512h s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm512_add_ph(s, a[i]);
    sink_f = (float)_mm512_reduce_add_ph(s);
    return (double)n * ACCUMULATORS * 32 * 2;
}

double luhd_peak_fma_f16(long n) { return luhd_cpu()->avx512_fp16 ? fma_f16_512(n) : 0; }

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static double dot_bf16_512(long n) {
    __m512 a[ACCUMULATORS];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3F80), y = (__m512bh)_mm512_set1_epi16(0x3A80);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
        __asm__ volatile("" : "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
    __m512 s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm512_add_ps(s, a[i]);
    sink_f = _mm512_reduce_add_ps(s);
    return (double)n * ACCUMULATORS * 16 * 4;
}

double luhd_peak_dot_bf16(long n) { return luhd_cpu()->avx512_bf16 ? dot_bf16_512(n) : 0; }

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double dot_i8_512(long n) {
    __m512i a[ACCUMULATORS], x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_set1_epi32(i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, y);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
        __asm__ volatile("" : "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
    __m512i s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm512_add_epi32(s, a[i]);
    sink_i = _mm512_reduce_add_epi32(s);
    return (double)n * ACCUMULATORS * 64 * 2;
}

__attribute__((target("avx2,avxvnni"))) static double dot_i8_256(long n) {
    __m256i a[ACCUMULATORS], x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm256_set1_epi32(i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm256_dpbusd_avx_epi32(a[i], x, y);
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]));
        __asm__ volatile("" : "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]), "+x"(a[11]));
    }
    __m256i s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm256_add_epi32(s, a[i]);
    int out[8];
    _mm256_storeu_si256((__m256i *)out, s);
    sink_i = out[0];
    return (double)n * ACCUMULATORS * 32 * 2;
}

double luhd_peak_dot_i8(long n) {
    const luhd_cpu_features *f = luhd_cpu();
    if (f->avx512_vnni && f->avx512bw) return dot_i8_512(n);
    if (f->avx_vnni) return dot_i8_256(n);
    return 0;
}

/* The int8 product of CPUs without VNNI (quant_gemm_avx2.c): vpmaddubsw (32 u8 x s8 products
 * added in pairs to int16), vpmaddwd with ones (pairs to int32), vpaddd into the accumulator;
 * 32 multiply-adds = 64 operations per triple. Each chain multiplies its own accumulator's bytes
 * (so no product is loop-invariant); 12 chains cover the 7-cycle latency of a triple. */
__attribute__((target("avx2"))) static double dot_i8_avx2_256(long n) {
    __m256i a[ACCUMULATORS], x = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm256_set1_epi32(i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS; i++) a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, a[i]), ones));
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]));
        __asm__ volatile("" : "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]), "+x"(a[11]));
    }
    __m256i s = a[0];
    for (int i = 1; i < ACCUMULATORS; i++) s = _mm256_add_epi32(s, a[i]);
    int out[8];
    _mm256_storeu_si256((__m256i *)out, s);
    sink_i = out[0];
    return (double)n * ACCUMULATORS * 32 * 2;
}

double luhd_peak_dot_i8_avx2(long n) { return luhd_cpu()->avx2 ? dot_i8_avx2_256(n) : 0; }

/* Half the accumulators take vpdpbusd, the other half vfmadd231ps, interleaved. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double dot_i8_fma_f32_512(long n) {
    __m512i a[ACCUMULATORS / 2], x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
    __m512 b[ACCUMULATORS / 2], u = _mm512_set1_ps(0.999f), v = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < ACCUMULATORS / 2; i++) {
        a[i] = _mm512_set1_epi32(i);
        b[i] = _mm512_set1_ps((float)i);
    }
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < ACCUMULATORS / 2; i++) {
            a[i] = _mm512_dpbusd_epi32(a[i], x, y);
            b[i] = _mm512_fmadd_ps(b[i], u, v);
        }
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
        __asm__ volatile("" : "+v"(b[0]), "+v"(b[1]), "+v"(b[2]), "+v"(b[3]), "+v"(b[4]), "+v"(b[5]));
    }
    __m512i s = a[0];
    __m512 t = b[0];
    for (int i = 1; i < ACCUMULATORS / 2; i++) {
        s = _mm512_add_epi32(s, a[i]);
        t = _mm512_add_ps(t, b[i]);
    }
    sink_i = _mm512_reduce_add_epi32(s);
    sink_f = _mm512_reduce_add_ps(t);
    return (double)n * ACCUMULATORS;
}

double luhd_peak_dot_i8_fma_f32(long n) {
    const luhd_cpu_features *f = luhd_cpu();
    return f->avx512_vnni && f->avx512bw ? dot_i8_fma_f32_512(n) : 0;
}

__attribute__((target("avx2"))) unsigned long long luhd_peak_read_streams(const void *p, unsigned long n, int streams) {
    enum { STEP = 128, MAX_STREAMS = 16 };
    if (streams < 1) streams = 1;
    if (streams > MAX_STREAMS) streams = MAX_STREAMS;
    const unsigned char *b = (const unsigned char *)p;
    unsigned long part = n / (unsigned long)streams / STEP * STEP;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (unsigned long i = 0; i < part; i += STEP) {
        for (int s = 0; s < streams; s++) {
            const unsigned char *q = b + (unsigned long)s * part + i;
            a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)q));
            a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(q + 32)));
            a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(q + 64)));
            a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(q + 96)));
        }
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    unsigned long long x = (unsigned long long)_mm256_extract_epi64(a, 0) ^ (unsigned long long)_mm256_extract_epi64(a, 1) ^
                           (unsigned long long)_mm256_extract_epi64(a, 2) ^ (unsigned long long)_mm256_extract_epi64(a, 3);
    for (unsigned long i = part * (unsigned long)streams; i < n; i++) x += b[i];
    return x;
}
