#ifndef CLLAVAUHD_PEAK_LOOPS_H
#define CLLAVAUHD_PEAK_LOOPS_H

/* Register-resident loops that measure one core's arithmetic peak (for benchmarks, which run
 * one per thread and time them): `iterations` rounds of 12 independent multiply-accumulates on
 * the widest vectors the CPU has. Each returns the operations it performed (a multiply-add
 * counts 2), or 0 when the CPU lacks the instructions:
 *   fma_f32:  vfmadd231ps (AVX-512, else AVX2);
 *   fma_f16:  vfmadd231ph (AVX512_FP16);
 *   dot_bf16: vdpbf16ps (AVX512_BF16), a bf16 pair product added to float32 = 4 operations;
 *   dot_i8:   vpdpbusd (AVX512_VNNI, else AVX-VNNI), four u8*s8 products added to int32 = 8;
 *   dot_i8_avx2: vpmaddubsw + vpmaddwd (with ones) + vpaddd (AVX2), the integer core of the int8
 *             products without VNNI (quant_gemm_avx2.c): 32 u8*s8 products added to int32 = 64
 *             operations per three instructions.
 * dot_i8_fma_f32 runs 6 vpdpbusd and 6 vfmadd231ps per round, interleaved (512-bit, AVX512_VNNI
 * only), and returns the instructions it executed (12 per round), not operations: against the
 * instruction rates of dot_i8 (operations / 128) and fma_f32 (operations / 32) it shows whether
 * the CPU runs the two kinds on separate pipes (the mix runs at about their sum) or on shared
 * ones (at either's rate), which bounds what the int8 decode kernels can do per row of x.
 * Thread-safe. */
double luhd_peak_fma_f32(long iterations);
double luhd_peak_fma_f16(long iterations);
double luhd_peak_dot_bf16(long iterations);
double luhd_peak_dot_i8(long iterations);
double luhd_peak_dot_i8_avx2(long iterations);
double luhd_peak_dot_i8_fma_f32(long iterations);

/* Reads the n bytes at p once as `streams` (1...16) contiguous parts walked side by side, two
 * cache lines of each part per step with 256-bit loads, and returns an XOR of all of them
 * (defeats dead-code elimination). One sequential stream per core leaves the read bandwidth
 * unused on CPUs whose cores need several streams in flight to fill their miss queues (Zen 4:
 * one stream per core reads about 27 GB/s on 2 cores where decode kernels, reading many weight
 * rows at once, reach 38); the bandwidth bound takes the best over a few stream counts. */
unsigned long long luhd_peak_read_streams(const void *p, unsigned long n, int streams);

#endif
