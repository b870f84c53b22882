/// How activations meet dense (F32/F16/BF16) weights in matrix products of many rows (prefill).
/// Products against block-quantized weights do not depend on it: they quantize x to int8 blocks
/// where the CPU has an int8 product for the format (`Int8ProductKernel`: AVX-512 VNNI, else
/// AVX2) and use float32 otherwise.
public enum MatrixArithmetic: String, Sendable, CaseIterable {
    /// float32 products: weights widened exactly, x as is, float32 sums (for many rows, the own
    /// AVX-512 kernel of `BF16WeightProduct` for BF16 weights where the CPU has AVX-512, else
    /// OpenBLAS sgemm; the f32 matrix-vector kernels for few). The reference arithmetic.
    case float32
    /// For products of more than `MatMul.matvecMaxRows` rows against BF16 weights, x is rounded to
    /// bf16 (to nearest even) and multiplied with AVX512_BF16 `vdpbf16ps` (bf16 pairs, float32
    /// sums): twice the arithmetic rate of float32 on CPUs that have it, with the error of
    /// rounding x to 8 significant bits (relative ≤ 2⁻⁹ per element, as PyTorch's bf16 matmul).
    /// Matrix-vector products (decoding) stay float32; without AVX512_BF16 everything does.
    case bfloat16
    /// The vision tower's projections and the Hiwin projector's attention value heads and
    /// out_proj, cat_proj and proj only (`CLIPVisionEncoder`,
    /// `ProjectorConfig.makeProjector`; elsewhere, e.g. the LLM's dense
    /// weights, products run float32): every weight gets a Q8_0 copy made once at load (blocks
    /// of 32 weights with an f16 scale, GGML's round-to-nearest quantizer; `Int8Product`), x is
    /// quantized to int8 per block of 32 on the fly (dx = max|x|/127), and the products run in
    /// the int8 matrix product of quantized prefill (`vpdpbusd`, 4 times float32's arithmetic per
    /// instruction; without AVX-512 VNNI `vpmaddubsw` + `vpmaddwd`, `Int8ProductKernel.avx2`).
    /// Error of one output ≤ Σₖ |xₖ|·|wₖ − w~ₖ| + Σ_blocks (dx/2)·Σ|w~ₖ| (w~ the Q8_0 values)
    /// plus float32 rounding (Tests/KernelsTests/Int8ProductTests.swift). Without an int8
    /// product (no AVX2) the Q8_0 copy is dequantized tile by tile for sgemm (slower than
    /// float32: `Precision.fast` never picks `.int8` there, nor where calibration did not
    /// measure the int8 product faster: `CPUProfile.fastVisionArithmetic`).
    case int8

    /// True when this CPU runs the bf16 matrix product.
    public static var bfloat16Available: Bool { BF16Product.isAvailable }
}
