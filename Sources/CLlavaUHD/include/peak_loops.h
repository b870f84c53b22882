#ifndef CLLAVAUHD_PEAK_LOOPS_H
#define CLLAVAUHD_PEAK_LOOPS_H

/* Register-resident loops that measure one core's arithmetic peak (for benchmarks, which run
 * one per thread and time them): `iterations` rounds of 12 independent multiply-accumulates on
 * the widest vectors the CPU has. Each returns the operations it performed (a multiply-add
 * counts 2), or 0 when the CPU lacks the instructions:
 *   fma_f32:  vfmadd231ps (AVX-512, else AVX2);
 *   fma_f16:  vfmadd231ph (AVX512_FP16);
 *   dot_bf16: vdpbf16ps (AVX512_BF16), a bf16 pair product added to float32 = 4 operations;
 *   dot_i8:   vpdpbusd (AVX512_VNNI, else AVX-VNNI), four u8*s8 products added to int32 = 8.
 * Thread-safe. */
double luhd_peak_fma_f32(long iterations);
double luhd_peak_fma_f16(long iterations);
double luhd_peak_dot_bf16(long iterations);
double luhd_peak_dot_i8(long iterations);

#endif
