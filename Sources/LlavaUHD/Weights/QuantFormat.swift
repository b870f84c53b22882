import CLlavaUHD

/// The storage formats of a `QuantizedMatrix`: GGML's block-quantized formats, with their byte
/// layouts exactly as GGML and GGUF files store them, and the dense float formats (so a matrix
/// of any of these types goes through the same kernels).
///
/// | format | block | bytes | layout of one block | element value |
/// |---|---|---|---|---|
/// | Q8_0 | 32 | 34 | f16 `d`, 32 × int8 `q` | `q·d` |
/// | Q4_0 | 32 | 18 | f16 `d`, 16 bytes: element j in the low nibble of byte j, element j+16 in its high nibble | `(q−8)·d` |
/// | Q4_1 | 32 | 20 | f16 `d`, f16 `m`, 16 bytes of nibbles as Q4_0 | `d·q + m` |
/// | Q5_0 | 32 | 22 | f16 `d`, u32 `qh` (bit j: fifth bit of element j), 16 bytes of nibbles as Q4_0 | `(q−16)·d` |
/// | Q5_1 | 32 | 24 | f16 `d`, f16 `m`, u32 `qh`, 16 bytes of nibbles as Q4_0 | `d·q + m` |
/// | IQ4_NL | 32 | 18 | f16 `d`, 16 bytes of nibbles as Q4_0 | `d·K[q]`, K a fixed 16-entry table |
/// | Q2_K | 256 | 84 | 16 bytes of 4-bit scale / min per sub-block of 16, 64 bytes of 2-bit q, f16 `d`, f16 `dmin` | `(d·sc)·q − dmin·m` |
/// | Q3_K | 256 | 110 | 32 bytes of high bits, 64 bytes of 2-bit low parts, 12 bytes of 6-bit scales (sub-blocks of 16), f16 `d` | `(d·(sc−32))·q`, q in −4…3 |
/// | Q5_K | 256 | 176 | as Q4_K with 32 bytes of fifth bits before the nibbles | `(d·sc)·q − dmin·m` |
/// | IQ4_XS | 256 | 136 | f16 `d`, 6-bit scales (sub-blocks of 32), 128 bytes of nibbles | `(d·(ls−32))·K[q]` |
/// | Q4_K | 256 | 144 | f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales `sc` / mins `m` for 8 sub-blocks of 32, 128 bytes of nibbles (each 32-byte run: sub-block 2c in the low nibbles, 2c+1 in the high ones) | `(d·sc)·q − dmin·m` |
/// | Q6_K | 256 | 210 | 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 × int8 scales (sub-blocks of 16), f16 `d` | `(d·sc)·(q−32)` |
/// | F32 / F16 / BF16 | 1 | 4 / 2 / 2 | one element | the element |
///
/// (Bit-level layouts and the order of the f32 operations: Sources/CLlavaUHD/include/quant_kernels.h.)
///
/// Raw values are the GGML type names that GGUF tools print.
public enum QuantFormat: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case q8_0 = "Q8_0"
    case q4_0 = "Q4_0"
    case q4_1 = "Q4_1"
    case q5_0 = "Q5_0"
    case q5_1 = "Q5_1"
    case iq4_nl = "IQ4_NL"
    case q2_K = "Q2_K"
    case q3_K = "Q3_K"
    case q4_K = "Q4_K"
    case q5_K = "Q5_K"
    case q6_K = "Q6_K"
    case iq4_xs = "IQ4_XS"

    /// The GGML type id (what a GGUF tensor info stores).
    public var ggmlType: Int {
        switch self {
        case .f32: Int(LUHD_QF_F32)
        case .f16: Int(LUHD_QF_F16)
        case .bf16: Int(LUHD_QF_BF16)
        case .q8_0: Int(LUHD_QF_Q8_0)
        case .q4_0: Int(LUHD_QF_Q4_0)
        case .q4_1: Int(LUHD_QF_Q4_1)
        case .q5_0: Int(LUHD_QF_Q5_0)
        case .q5_1: Int(LUHD_QF_Q5_1)
        case .iq4_nl: Int(LUHD_QF_IQ4_NL)
        case .q2_K: Int(LUHD_QF_Q2_K)
        case .q3_K: Int(LUHD_QF_Q3_K)
        case .q4_K: Int(LUHD_QF_Q4_K)
        case .q5_K: Int(LUHD_QF_Q5_K)
        case .q6_K: Int(LUHD_QF_Q6_K)
        case .iq4_xs: Int(LUHD_QF_IQ4_XS)
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
    /// Byte offsets in a block of its f16 fields, the scale `d` first, then the min (`m` or
    /// `dmin`) where the format has one; empty for the dense formats. For tools that make
    /// synthetic blocks (tests, benchmarks): random bytes elsewhere are valid quants.
    public var halfFloatFields: [Int] {
        switch self {
        case .f32, .f16, .bf16: []
        case .q8_0, .q4_0, .q5_0, .iq4_nl, .iq4_xs: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q2_K: [80, 82]
        case .q3_K: [108]
        case .q6_K: [208]
        }
    }

    /// True for the block formats (every format but F32, F16 and BF16).
    public var isBlockQuantized: Bool { blockElements > 1 }

    /// The dense formats as safetensors dtypes.
    public var dtype: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: nil
        }
    }

    /// The dense format of a safetensors dtype (F32, F16, BF16), or nil.
    public init?(dtype: DType) {
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
