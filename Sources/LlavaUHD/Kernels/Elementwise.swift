/// The small element-wise steps between the matrix products, split over threads for long
/// inputs (each element is computed the same way whatever the split).
enum Elementwise {
    static let minimumPerTask = 1 << 15

    static func ranges(_ count: Int, threads: Int) -> [Range<Int>] {
        chunks(count, parts: min(threads * 4, max(1, count / minimumPerTask)))
    }

    /// y += x.
    static func add(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        let parts = ranges(count, threads: threads), out = SendablePointer(y)
        parallelFor(parts.count, threads: threads) { p in
            for i in parts[p] { out.p[i] += x[i] }
        }
    }

    /// Adds `v` (`cols` floats) to every row of `m` (`[rows × cols]`).
    static func addRowVector(_ v: [Float], to m: UnsafeMutablePointer<Float>, rows: Int, cols: Int, threads: Int) {
        let parts = chunks(rows, parts: rows * cols >= minimumPerTask ? threads : 1), out = SendablePointer(m)
        v.withUnsafeBufferPointer { b in
            guard let bias = b.baseAddress else { return }
            parallelFor(parts.count, threads: threads) { p in
                for r in parts[p] {
                    let row = out.p + r * cols
                    for j in 0..<cols { row[j] += bias[j] }
                }
            }
        }
    }

    /// Puts the values of every head of every row from GGML's interleaved rotary order back
    /// in Hugging Face's: value 2i + j of a head moves to j·headDim/2 + i.
    static func deinterleaveHeads(_ m: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int, headDim: Int) {
        let half = headDim / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { tmp in
            guard let t = tmp.baseAddress else { return }
            for r in 0..<rows {
                for head in 0..<heads {
                    let v = m + r * rowStride + head * headDim
                    for i in 0..<half {
                        t[i] = v[2 * i]
                        t[half + i] = v[2 * i + 1]
                    }
                    v.update(from: t, count: headDim)
                }
            }
        }
    }
}
