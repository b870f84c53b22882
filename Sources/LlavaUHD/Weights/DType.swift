/// Element types of tensors in weight files. Raw values are the safetensors spellings; every
/// dtype safetensors defines is known so that files holding, say, an I64 buffer still load.
/// The layers compute from F32, F16 and BF16 (and, for quantized formats, I8/U8).
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"
    case i16 = "I16"
    case u16 = "U16"
    case i32 = "I32"
    case u32 = "U32"
    case i64 = "I64"
    case u64 = "U64"
    case f64 = "F64"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: 1
        case .f16, .bf16, .i16, .u16: 2
        case .f32, .i32, .u32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// The floating-point types a layer's weights may have.
    public static let floatWeights: Set<DType> = [.f32, .f16, .bf16]
}
