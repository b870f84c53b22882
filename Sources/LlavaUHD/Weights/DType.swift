/// Element types of tensors in weight files. Raw values are the safetensors spellings.
///
/// Every whole-byte dtype that safetensors defines is known, so that a file holding, say, an
/// I64 `position_ids` buffer or an FP8 tensor still loads; any of them converts to Float.
/// The layers compute from F32, F16 and BF16 (and, for quantized formats, I8/U8).
/// The sub-byte dtypes (F4, F6_E2M3, F6_E3M2) and the complex C64 are recognised by name
/// (`DType.unreadableNames`) and reported as unsupported.
package enum DType: String, Sendable, CaseIterable {
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
    /// FP8 E4M3 "FN" (bias 7, no infinities, S.1111.111 is NaN), torch `float8_e4m3fn`.
    case f8e4m3 = "F8_E4M3"
    /// FP8 E5M2 (bias 15, IEEE-style infinities and NaNs), torch `float8_e5m2`.
    case f8e5m2 = "F8_E5M2"
    /// FP8 E4M3 "FNUZ" (bias 8, no infinities, no −0; 0x80 is NaN), torch `float8_e4m3fnuz`.
    case f8e4m3fnuz = "F8_E4M3FNUZ"
    /// FP8 E5M2 "FNUZ" (bias 16, no infinities, no −0; 0x80 is NaN), torch `float8_e5m2fnuz`.
    case f8e5m2fnuz = "F8_E5M2FNUZ"
    /// OCP MX scale: 8 exponent bits, no sign, no mantissa: 2^(e−127); 0xFF is NaN.
    case f8e8m0 = "F8_E8M0"

    /// Bytes per element.
    package var size: Int {
        switch self {
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0: 1
        case .f16, .bf16, .i16, .u16: 2
        case .f32, .i32, .u32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// The floating-point types a layer's weights may have.
    package static let floatWeights: Set<DType> = [.f32, .f16, .bf16]

    /// Safetensors dtypes this library recognises but cannot read: sub-byte floats (elements
    /// that do not start on a byte boundary) and complex numbers.
    package static let unreadableNames: Set<String> = ["F4", "F6_E2M3", "F6_E3M2", "C64"]
}
