import CLlavaUHD

/// The kernel families for `QuantizedMatrix` products (see Sources/CLlavaUHD/include/quant_kernels.h).
package enum QuantKernel: Int32, Sendable, CaseIterable {
    /// Weights widened to f32 in 256-bit registers, f32 x (the AVX2+FMA baseline; every format).
    case f32AVX2 = 0
    /// The same with 512-bit registers (AVX-512 F/BW/VL/DQ; every format).
    case f32AVX512 = 1
    /// x quantized to int8 per 32-element block (`x~ = dx·round(x/dx)`, `dx = max|x|/127`),
    /// integer dot products with AVX-512 VNNI (every block format). Computes `W·x~`, so it
    /// differs from `W·x` by at most Σ_blocks (dx/2)·Σ|w| (about 4e-4 of Σ|w·x| on random data).
    /// The prefill products of the K formats Q3_K-Q6_K (on AVX2 also Q2_K) take the blocks per
    /// super-block of 256 instead, as llama.cpp does (`PreparedInt8Rows.Blocking`).
    case int8VNNI = 2
    /// The same contract as `int8VNNI` (`W·x~`, x quantized per 32, exact integer block sums)
    /// with AVX2 `vpmaddubsw`/`vpmaddwd` (and FMA, F16C), for CPUs without AVX-512 VNNI; Q4_0,
    /// Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS and Q2_K-Q6_K (quant_matvec_int8_avx2.c).
    /// Matrix-vector products only.
    case int8AVX2 = 3

    /// True when this CPU runs the kernel.
    package var isAvailable: Bool { luhd_quant_kernel_available(rawValue) != 0 }

    /// True when the kernel implements `format`.
    package func supports(_ format: QuantFormat) -> Bool {
        luhd_quant_kernel_supports(Int32(format.ggmlType), rawValue) != 0
    }

    /// The kernel used by default for `format` on this CPU: `preferred(for:available:)` with the
    /// kernels it runs.
    package static func preferred(for format: QuantFormat) -> QuantKernel {
        preferred(for: format) { available.contains($0) }
    }

    /// The kernel used by default for `format` on a CPU that runs the kernels `available` names:
    /// the int8 VNNI kernel for the formats it has (2 to 3 times the f32 kernels' arithmetic
    /// throughput, which decides whether a matvec keeps up with memory: see BENCHMARKS.md
    /// `quant`), else the int8 AVX2 kernel for the formats it has (one thread, one row of x, a
    /// 4096-column matrix in the cache, on a Zen 3 EPYC: Q4_0 20-21 GB/s of weights against the
    /// f32 kernel's 6.2-6.3, Q8_0 22-28 against 8.8-9.1, Q4_K 17-17.5 against 4.5-4.7, Q6_K 20
    /// against 4.9; BENCHMARKS.md notes:matvec9), else the f32 kernels with the widest registers
    /// the CPU has.
    package static func preferred(for format: QuantFormat, available: (QuantKernel) -> Bool) -> QuantKernel {
        if available(.int8VNNI), QuantKernel.int8VNNI.supports(format) { return .int8VNNI }
        if available(.int8AVX2), QuantKernel.int8AVX2.supports(format) { return .int8AVX2 }
        return available(.f32AVX512) ? .f32AVX512 : .f32AVX2
    }

    /// The kernels this CPU runs.
    private static let available = Set(allCases.filter(\.isAvailable))
}
