/// How activations meet dense (F32/F16/BF16) weights in matrix products of many rows (prefill).
/// Products against block-quantized weights do not depend on it: they quantize x to int8 blocks
/// where the CPU has AVX-512 VNNI (`QuantKernel.int8VNNI`) and use float32 otherwise.
public enum MatrixArithmetic: String, Sendable, CaseIterable {
    /// float32 products: weights widened exactly, x as is, float32 sums (OpenBLAS sgemm for many
    /// rows, the f32 matrix-vector kernels for few). The reference arithmetic.
    case float32
    /// For products of more than `MatMul.matvecMaxRows` rows against BF16 weights, x is rounded to
    /// bf16 (to nearest even) and multiplied with AVX512_BF16 `vdpbf16ps` (bf16 pairs, float32
    /// sums): twice the arithmetic rate of float32 on CPUs that have it, with the error of
    /// rounding x to 8 significant bits (relative ≤ 2⁻⁹ per element, as PyTorch's bf16 matmul).
    /// Matrix-vector products (decoding) stay float32; without AVX512_BF16 everything does.
    case bfloat16

    /// True when this CPU runs the bf16 matrix product.
    public static var bfloat16Available: Bool { BF16Product.isAvailable }
}
