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
    /// The prefill products of the K formats Q4_K, Q5_K, Q6_K and Q3_K take the blocks per
    /// super-block of 256 instead, as llama.cpp does (`PreparedInt8Rows.Blocking`).
    case int8VNNI = 2

    /// True when this CPU runs the kernel.
    package var isAvailable: Bool { luhd_quant_kernel_available(rawValue) != 0 }

    /// True when the kernel implements `format`.
    package func supports(_ format: QuantFormat) -> Bool {
        luhd_quant_kernel_supports(Int32(format.ggmlType), rawValue) != 0
    }

    /// The kernel used by default for `format`: the int8 VNNI kernel for the formats it has when
    /// the CPU has AVX-512 VNNI (2 to 3 times the f32 kernels' arithmetic throughput, which
    /// decides whether a matvec keeps up with memory: see BENCHMARKS.md `quant`), else the f32
    /// kernels with the widest registers the CPU has.
    package static func preferred(for format: QuantFormat) -> QuantKernel {
        if hasVNNI, QuantKernel.int8VNNI.supports(format) { return .int8VNNI }
        return hasAVX512 ? .f32AVX512 : .f32AVX2
    }

    private static let hasAVX512 = QuantKernel.f32AVX512.isAvailable
    private static let hasVNNI = QuantKernel.int8VNNI.isAvailable
}
