import CLlavaUHD

/// The int8 matrix products of prefill (`MatMul.int8Product`): x quantized to int8 per block of
/// 32 (`x~ = dx·round(x/dx)`, `dx = max|x|/127`, ties to even), integer dot products exact in
/// int32, scales applied per block in f32, so both compute `W·x~` up to f32 rounding
/// (Sources/CLlavaUHD/include/quant_kernels.h). Which one runs is a fact of the CPU's features:
/// the AVX-512 VNNI one where the CPU has it, else the AVX2 one (CPUs with AVX2, FMA and F16C
/// but without AVX-512 VNNI: AMD Zen 2/3, Intel client cores), else none (dequantization +
/// sgemm).
package enum Int8ProductKernel: Sendable, CaseIterable {
    /// `vpdpbusd` with 512-bit vectors (quant_gemm_vnni.c; the K formats Q3_K-Q6_K per
    /// super-block of 256, quant_gemm_k_vnni.c): every block format.
    case vnni
    /// `vpmaddubsw` + `vpmaddwd` with 256-bit vectors: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and
    /// IQ4_XS per block of 32 (quant_gemm_avx2.c), Q4_K, Q5_K, Q6_K, Q3_K and Q2_K per super-block
    /// of 256 (quant_gemm_k_avx2.c, the contract of the VNNI K product; the VNNI product takes Q2_K
    /// per 32). On Zen 3 (one thread, CPU
    /// time) about 93 GOP/s for Q8_0 and 146 for Q4_0 at 256 × 4096 → 4096 (BENCHMARKS.md
    /// notes:gemm9), 240 for Q4_K and 175 for Q6_K at 1024 × 4096 → 4096 (notes:kgemm10),
    /// against a float32 FMA peak of 100 GFLOP/s.
    case avx2

    /// True when a CPU with `features` runs the product.
    package func runs(on features: CPUProfile.Features) -> Bool {
        switch self {
        case .vnni: features.avx512 && features.avx512VNNI
        case .avx2: features.avx2 && features.fma && features.f16c
        }
    }

    /// True when this CPU runs the product.
    package var isAvailable: Bool { runs(on: Self.hostFeatures) }

    /// True when the product implements `format`.
    package func supports(_ format: QuantFormat) -> Bool {
        let fmt = Int32(format.ggmlType)
        switch self {
        case .vnni: return luhd_quant_gemm_supports(fmt) != 0 || luhd_quant_gemm_k_supports(fmt) != 0
        case .avx2: return luhd_quant_gemm_avx2_supports(fmt) != 0 || luhd_quant_gemm_k_avx2_supports(fmt) != 0
        }
    }

    /// The product a CPU with `features` runs for `format` (the VNNI one first), nil when none
    /// does.
    package static func preferred(for format: QuantFormat, features: CPUProfile.Features) -> Int8ProductKernel? {
        allCases.first { $0.runs(on: features) && $0.supports(format) }
    }

    /// The product `MatMul.linear(_:rows:weight:into:ldOut:context:kernel:rowwise:)` runs for a
    /// matrix of `format` with the kernel override `kernel`: none when `kernel` is an f32 kernel
    /// the CPU runs (exact f32 arithmetic: dequantization + sgemm), else the preferred one.
    package static func chosen(for format: QuantFormat, kernel: QuantKernel?, features: CPUProfile.Features) -> Int8ProductKernel? {
        switch kernel {
        case .f32AVX2? where features.avx2 && features.fma: return nil
        case .f32AVX512? where features.avx512: return nil
        default: return preferred(for: format, features: features)
        }
    }

    /// The features of this CPU, read once.
    package static let hostFeatures = CPUProfile.Features.host

    /// The product this CPU runs for Q8_0 (every product implements it; VNNI where neither
    /// runs, so that a layout is always defined: nothing is then prepared or multiplied, see
    /// `isAvailable`).
    package static let host = preferred(for: .q8_0, features: hostFeatures) ?? .vnni
}
