/// How a `KVCache` stores keys and values (`luhd_kv_type`; the raw values are the C enum's).
///
/// 16-bit storage halves the cache's memory and the bytes decoding reads per position
/// (Vicuna-7B: 0.25 instead of 0.5 MiB per position); the attention kernels widen the stored
/// values in registers. Keys and values are rounded once when stored (to nearest even), and
/// attention reads the rounded values for the new positions too, so a prompt evaluated in one
/// call or position by position leaves the same cache. Logits stay within the bounds stated in
/// Tests/LanguageTests/KVCacheTypeTests.swift of the float32 cache.
public enum KVCacheType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Float32: exactly what the projections computed (the reference; 4 bytes per value).
    case float32 = 0
    /// IEEE half (10-bit mantissa, largest finite 65504; larger values become infinite).
    /// The default of sessions: more precise than bfloat16 for the magnitudes keys and values
    /// of LLaMA- and Qwen2-class models have.
    case float16 = 1
    /// bfloat16 (8-bit mantissa, float32's range).
    case bfloat16 = 2

    /// The storage type of sessions unless chosen otherwise.
    public static let sessionDefault: KVCacheType = .float16

    /// Bytes per stored value.
    public var bytesPerValue: Int {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        }
    }

    /// The name the CLI and the benchmarks use: "f32", "f16", "bf16".
    public var description: String {
        switch self {
        case .float32: "f32"
        case .float16: "f16"
        case .bfloat16: "bf16"
        }
    }

    /// The type named `name` ("f32", "f16", "bf16"), nil for any other name.
    public init?(name: String) {
        guard let t = KVCacheType.allCases.first(where: { $0.description == name }) else { return nil }
        self = t
    }
}
