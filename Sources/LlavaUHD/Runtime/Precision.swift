/// The precision a caller asks for (`luhd_precision`, the CLI's `--precision`, Python's
/// `Precision`): exact float32, or the fastest reduced-precision kernels the CPU has within a
/// stated bound. Raw values are the C enum's.
public enum Precision: Int32, Sendable, CaseIterable {
    /// float32 products: the reference arithmetic.
    case exact = 0
    /// Today the bf16 products of `MatrixArithmetic.bfloat16` where the CPU has AVX512_BF16
    /// (relative error ≤ 2⁻⁹ per activation, PyTorch's bf16 matmul); elsewhere the same as `exact`.
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

    /// The matrix-product arithmetic this precision selects.
    public var matrixArithmetic: MatrixArithmetic {
        switch self {
        case .exact: .float32
        case .fast: .bfloat16
        }
    }
}
