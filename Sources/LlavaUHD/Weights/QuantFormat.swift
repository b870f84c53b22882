import CLlavaUHD

/// The storage formats of a `QuantizedMatrix`: GGML's block-quantized formats, with their byte
/// layouts exactly as GGML and GGUF files store them, and the dense float formats (so a matrix
/// of any of these types goes through the same kernels).
///
/// | format | block | bytes | layout of one block | element value |
/// |---|---|---|---|---|
/// | Q8_0 | 32 | 34 | f16 `d`, 32 × int8 `q` | `q·d` |
/// | Q4_0 | 32 | 18 | f16 `d`, 16 bytes: element j in the low nibble of byte j, element j+16 in its high nibble | `(q−8)·d` |
/// | Q5_0 | 32 | 22 | f16 `d`, u32 `qh` (bit j: fifth bit of element j), 16 bytes of nibbles as Q4_0 | `(q−16)·d` |
/// | Q4_K | 256 | 144 | f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales `sc` / mins `m` for 8 sub-blocks of 32, 128 bytes of nibbles (each 32-byte run: sub-block 2c in the low nibbles, 2c+1 in the high ones) | `(d·sc)·q − dmin·m` |
/// | Q6_K | 256 | 210 | 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 × int8 scales (sub-blocks of 16), f16 `d` | `(d·sc)·(q−32)` |
/// | F32 / F16 / BF16 | 1 | 4 / 2 / 2 | one element | the element |
///
/// Raw values are the GGML type names that GGUF tools print.
public enum QuantFormat: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case q8_0 = "Q8_0"
    case q4_0 = "Q4_0"
    case q5_0 = "Q5_0"
    case q4_K = "Q4_K"
    case q6_K = "Q6_K"

    /// The GGML type id (what a GGUF tensor info stores).
    public var ggmlType: Int {
        switch self {
        case .f32: Int(LUHD_QF_F32)
        case .f16: Int(LUHD_QF_F16)
        case .bf16: Int(LUHD_QF_BF16)
        case .q8_0: Int(LUHD_QF_Q8_0)
        case .q4_0: Int(LUHD_QF_Q4_0)
        case .q5_0: Int(LUHD_QF_Q5_0)
        case .q4_K: Int(LUHD_QF_Q4_K)
        case .q6_K: Int(LUHD_QF_Q6_K)
        }
    }

    /// The format with GGML type id `ggmlType`, or nil for any other type.
    public init?(ggmlType: Int) {
        guard let f = QuantFormat.allCases.first(where: { $0.ggmlType == ggmlType }) else { return nil }
        self = f
    }

    /// The lower-case spelling used in names and metadata ("q8_0", "q4_k", "bf16").
    public var lowercaseName: String { String(decoding: rawValue.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self) }

    /// Parses either spelling ("Q8_0" or "q8_0").
    public init?(name: String) {
        guard let f = QuantFormat.allCases.first(where: { $0.rawValue == name || $0.lowercaseName == name }) else { return nil }
        self = f
    }

    /// Elements per block (1 for the dense formats).
    public var blockElements: Int { Int(luhd_quant_block_elements(Int32(ggmlType))) }
    /// Bytes per block.
    public var blockBytes: Int { Int(luhd_quant_block_bytes(Int32(ggmlType))) }
    /// True for the block formats (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K).
    public var isBlockQuantized: Bool { blockElements > 1 }

    /// The dense formats as safetensors dtypes.
    package var dtype: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: nil
        }
    }

    /// The dense format of a safetensors dtype (F32, F16, BF16), or nil.
    package init?(dtype: DType) {
        switch dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        default: return nil
        }
    }

    /// Bytes of one row of `columns` elements, or nil when `columns` is not a positive multiple
    /// of the block size or the size overflows.
    public func rowBytes(columns: Int) -> Int? {
        guard columns > 0, columns % blockElements == 0 else { return nil }
        let (b, o) = (columns / blockElements).multipliedReportingOverflow(by: blockBytes)
        return o ? nil : b
    }
}
