/// The precision a caller asks for (`luhd_precision`, the CLI's `--precision`, Python's
/// `Precision`): exact float32, or the fastest reduced-precision kernels the CPU has within a
/// stated bound. Raw values are the C enum's.
public enum Precision: Int32, Sendable, CaseIterable {
    /// float32 products: the reference arithmetic.
    case exact = 0
    /// The fastest reduced-precision kernels this CPU has, within the stated bound of exact,
    /// chosen from the CPU's features and a one-time calibration (`CPUProfile`), never slower
    /// than `exact`:
    /// - vision tower and the Hiwin projector's attention value heads and out_proj,
    ///   cat_proj and proj: int8 products against
    ///   Q8_0 copies of their weights made at load (`MatrixArithmetic.int8`, AVX-512 VNNI;
    ///   projector output within 2e-2 of exact relative to its largest magnitude,
    ///   Tests/VisionTests/FastVisionTests.swift), else for the tower bf16 as below;
    /// - vision tower and LLM prefill: bf16 products (`MatrixArithmetic.bfloat16`: relative error
    ///   ≤ 2⁻⁹ per activation, PyTorch's bf16 matmul, float32 sums) where the CPU has AVX512_BF16
    ///   and they measure faster than float32;
    /// - elsewhere (the rest of the projector, decoding, CPUs without these) as `exact`.
    /// Selection tested in Tests/KernelsTests/PrecisionTests.swift.
    case fast = 1

    /// The name the CLI takes and the wire formats write ("exact", "fast").
    public var name: String {
        switch self {
        case .exact: "exact"
        case .fast: "fast"
        }
    }

    /// The precision named `name`, or nil.
    public init?(name: String) {
        guard let p = Precision.allCases.first(where: { $0.name == name }) else { return nil }
        self = p
    }

    /// How dense matrix products run on the CPU `profile` describes: `fast` is bf16 only where
    /// the CPU has AVX512_BF16 and bf16 products measure faster than float32 (`CPUProfile`: CPU
    /// features, then a one-time calibration), so it is never slower than `exact`.
    public func matrixArithmetic(on profile: @autoclosure () -> CPUProfile = CPUProfile.current) -> MatrixArithmetic {
        switch self {
        case .exact: .float32
        case .fast: profile().fastMatrixArithmetic
        }
    }

    /// How the vision tower's products run on the CPU `profile` describes: `fast` is int8 where
    /// the CPU has AVX-512 VNNI and the int8 product measures faster than float32, else as
    /// `matrixArithmetic(on:)` (`CPUProfile.fastVisionArithmetic`).
    public func visionArithmetic(on profile: @autoclosure () -> CPUProfile = CPUProfile.current) -> MatrixArithmetic {
        switch self {
        case .exact: .float32
        case .fast: profile().fastVisionArithmetic
        }
    }
}
