import LlavaUHD
import TestSupport
#if canImport(Glibc)
import Glibc
#endif


/// Memory for a test tensor, placed `misalignment` bytes past a 64-byte boundary so kernels
/// are exercised on unaligned data; owns the bytes for the lifetime of the views made from it.
final class TestBuffer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int, misalignment: Int = 0) {
        self.byteCount = byteCount
        raw = UnsafeMutableRawPointer.allocate(byteCount: byteCount + 64 + misalignment, alignment: 64)
        base = raw + misalignment
    }

    deinit { raw.deallocate() }

    /// Floats at `base` (which may be misaligned for Float: then only for unaligned kernels).
    var floats: UnsafeMutablePointer<Float> { base.assumingMemoryBound(to: Float.self) }
}

/// A weight tensor holding `values` (row-major `shape`) rounded to `dtype`, at an optionally
/// misaligned address. Returns the view and the exact Float values it holds.
func makeTensor(_ values: [Float], shape: [Int], dtype: DType, misalignment: Int = 0) -> (TensorView, [Float]) {
    let buffer = TestBuffer(byteCount: values.count * dtype.size, misalignment: misalignment)
    var exact = values
    switch dtype {
    case .f32:
        for (i, v) in values.enumerated() { buffer.base.storeBytes(of: v, toByteOffset: i * 4, as: Float.self) }
    case .f16:
        for (i, v) in values.enumerated() {
            let h = Float16(v)
            buffer.base.storeBytes(of: h.bitPattern, toByteOffset: i * 2, as: UInt16.self)
            exact[i] = Float(h)
        }
    case .bf16:
        for (i, v) in values.enumerated() {
            let bits = UInt16(truncatingIfNeeded: v.bitPattern >> 16)   // truncation: any bf16 value will do
            buffer.base.storeBytes(of: bits, toByteOffset: i * 2, as: UInt16.self)
            exact[i] = Float(bitPattern: UInt32(bits) << 16)
        }
    default:
        fatalError("test tensors are F32, F16 or BF16")
    }
    return (TensorView(name: "test", dtype: dtype, shape: shape, data: UnsafeRawPointer(buffer.base), owner: buffer), exact)
}

/// The distance between `got` and `ref` in units of the float spacing at `ref` (subnormal
/// spacing below the normal range).
func ulpDistance(_ got: Float, _ ref: Double) -> Double {
    if ref.isNaN { return got.isNaN ? 0 : .infinity }
    if ref.isInfinite { return Double(got) == ref ? 0 : .infinity }
    let e = max(Float(ref).exponent, -126)
    let spacing = Double(Float(sign: .plus, exponent: e - 23, significand: 1))
    return abs(Double(got) - ref) / spacing
}

/// `max|got − ref| / max|ref|` against a double-precision reference.
func relativeError(_ got: [Float], _ ref: [Double]) -> Double {
    var maxDiff = 0.0, maxRef = 0.0
    for i in ref.indices {
        if got[i].isNaN { return .infinity }
        maxDiff = max(maxDiff, abs(Double(got[i]) - ref[i]))
        maxRef = max(maxRef, abs(ref[i]))
    }
    return maxRef > 0 ? maxDiff / maxRef : maxDiff
}

/// The first index where two arrays differ bit for bit (or the shorter length when the sizes
/// differ), nil when identical. Tests compare large arrays through this, so a failure reports
/// one index instead of printing (and diffing) whole arrays.
func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
}
