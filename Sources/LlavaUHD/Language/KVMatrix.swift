/// One layer's keys or values in a `KVCache`: `[capacity × stride]` values of `type`,
/// row-major, one row per position. What `CausalAttention` reads and `DecoderLayer` writes.
package struct KVMatrix: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let type: KVCacheType
    /// Values per row (kvHeads · headDim).
    let stride: Int

    /// The storage as float32 (only when `type` is `.float32`).
    var floats: UnsafeMutablePointer<Float> {
        precondition(type == .float32, "KV matrix is not float32")
        return base.assumingMemoryBound(to: Float.self)
    }

    /// The storage as 16-bit values (only when `type` is `.float16` or `.bfloat16`).
    var halves: UnsafeMutablePointer<UInt16> {
        precondition(type.bytesPerValue == 2, "KV matrix is not 16-bit")
        return base.assumingMemoryBound(to: UInt16.self)
    }

    /// The matrix from row `rows` on.
    func offset(rows: Int) -> KVMatrix {
        KVMatrix(base: base + rows * stride * type.bytesPerValue, type: type, stride: stride)
    }

    /// Stores `rows` float32 rows (`[rows × stride]`) at positions `position ..< position + rows`,
    /// rounded to nearest even for 16-bit types. Many rows (a prefill pass) are split over
    /// `threads` by rows (each value is converted on its own, so the split changes no bit): a
    /// fresh cache takes its pages here, whose first touch (a 2 MB huge page zeroed, and on a
    /// virtual machine often backed by the host then) costs far more than the conversion.
    package func store(_ source: UnsafePointer<Float>, rows: Int, at position: Int, threads: Int = 1) {
        let parts = chunks(rows, parts: Elementwise.ranges(rows * stride, threads: threads).count)
        let src = SendablePointer(UnsafeMutablePointer(mutating: source))
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p], at = (position + r.lowerBound) * stride, from = UnsafePointer(src.p) + r.lowerBound * stride
            let count = r.count * stride
            switch type {
            case .float32: (floats + at).update(from: from, count: count)
            case .float16: FloatConversion.narrowToFloat16(from, count: count, into: halves + at)
            case .bfloat16: FloatConversion.narrowToBFloat16(from, count: count, into: halves + at)
            }
        }
    }

    /// Widens columns `column ..< column + width` of rows `0 ..< rows` into `out`
    /// (`[rows × width]` float32, exact).
    func widen(rows: Int, column: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        switch type {
        case .float32:
            for r in 0..<rows { (out + r * width).update(from: floats + r * stride + column, count: width) }
        case .float16:
            for r in 0..<rows { FloatConversion.widenFloat16(halves + r * stride + column, count: width, into: out + r * width) }
        case .bfloat16:
            for r in 0..<rows { FloatConversion.widenBFloat16(halves + r * stride + column, count: width, into: out + r * width) }
        }
    }
}
