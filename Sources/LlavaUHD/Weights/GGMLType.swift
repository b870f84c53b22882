/// A GGML tensor type as GGUF files store it: its id, name and block geometry. Every type that
/// GGML defines is known (so a file mixing, say, Q5_0 and Q4_K tensors parses and its sizes are
/// checked), but only those that are also a `QuantFormat` can be computed with.
package struct GGMLType: Sendable, Equatable, CustomStringConvertible {
    /// The type id in the file.
    package let id: Int
    /// GGML's name ("Q4_K", "F32", ...).
    package let name: String
    /// Elements per block (1 for the plain types).
    package let blockElements: Int
    /// Bytes per block.
    package let blockBytes: Int

    package var description: String { name }

    /// The library format of this type, if the kernels implement it.
    package var format: QuantFormat? { QuantFormat(ggmlType: id) }

    /// The type with id `id`, or nil if GGML defines no such type.
    package init?(id: Int) {
        guard let t = GGMLType.known.first(where: { $0.id == id }) else { return nil }
        self = t
    }

    private init(_ id: Int, _ name: String, _ blockElements: Int, _ blockBytes: Int) {
        self.id = id
        self.name = name
        self.blockElements = blockElements
        self.blockBytes = blockBytes
    }

    /// Ids 4, 5 and 31–33, 36–38 were used by formats since removed from GGUF and are not
    /// accepted.
    static let known: [GGMLType] = [
        .init(0, "F32", 1, 4), .init(1, "F16", 1, 2), .init(2, "Q4_0", 32, 18), .init(3, "Q4_1", 32, 20),
        .init(6, "Q5_0", 32, 22), .init(7, "Q5_1", 32, 24), .init(8, "Q8_0", 32, 34), .init(9, "Q8_1", 32, 40),
        .init(10, "Q2_K", 256, 84), .init(11, "Q3_K", 256, 110), .init(12, "Q4_K", 256, 144),
        .init(13, "Q5_K", 256, 176), .init(14, "Q6_K", 256, 210), .init(15, "Q8_K", 256, 292),
        .init(16, "IQ2_XXS", 256, 66), .init(17, "IQ2_XS", 256, 74), .init(18, "IQ3_XXS", 256, 98),
        .init(19, "IQ1_S", 256, 50), .init(20, "IQ4_NL", 32, 18), .init(21, "IQ3_S", 256, 110),
        .init(22, "IQ2_S", 256, 82), .init(23, "IQ4_XS", 256, 136), .init(24, "I8", 1, 1), .init(25, "I16", 1, 2),
        .init(26, "I32", 1, 4), .init(27, "I64", 1, 8), .init(28, "F64", 1, 8), .init(29, "IQ1_M", 256, 56),
        .init(30, "BF16", 1, 2), .init(34, "TQ1_0", 256, 54), .init(35, "TQ2_0", 256, 66),
        .init(39, "MXFP4", 32, 17),
    ]

    /// The safetensors dtype of a plain (one element per block) type.
    package var dtype: DType? {
        switch id {
        case 0: .f32
        case 1: .f16
        case 24: .i8
        case 25: .i16
        case 26: .i32
        case 27: .i64
        case 28: .f64
        case 30: .bf16
        default: nil
        }
    }
}
