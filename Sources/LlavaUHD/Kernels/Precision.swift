/// The user-facing choice of arithmetic: exact, or the fastest reduced-precision kernels this
/// CPU has (the C API's `luhd_precision`, the CLI's `--precision`).
///
/// `fast` is resolved per CPU by `CPUProfile` (features, then a short calibration where they do
/// not decide), and is never slower than `exact`: where no reduced-precision product measures
/// faster, `fast` runs the exact kernels. Bound: dense products in bf16 round each activation
/// to 8 significant bits (relative ≤ 2⁻⁹ per element, float32 sums); the resulting features and
/// logits are tested against the exact path in Tests/KernelsTests/PrecisionTests.swift and the
/// vision/language suites' bf16 tests.
public enum Precision: String, Sendable, CaseIterable {
    /// float32 arithmetic everywhere: the reference results.
    case exact
    /// The fastest reduced-precision kernels this CPU has, within the stated bound of exact.
    case fast

    /// How dense matrix products run on the CPU `profile` describes.
    public func matrixArithmetic(on profile: @autoclosure () -> CPUProfile = CPUProfile.current) -> MatrixArithmetic {
        switch self {
        case .exact: .float32
        case .fast: profile().fastMatrixArithmetic
        }
    }
}
