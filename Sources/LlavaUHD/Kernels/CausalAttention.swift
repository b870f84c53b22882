/// Scaled dot-product attention with a causal mask, for a decoder whose keys and values sit
/// in a cache: query row r is at position `start + r` and attends to the keys at positions
/// `0 ... start + r`. Grouped-query attention: query head h reads key/value head
/// `h / (heads / kvHeads)`.
///
/// Layouts (float32, row-major, one row per position):
/// * `queries`: `[rows × heads·headDim]`, row stride `queryStride`.
/// * `keys`, `values`: `[(start + rows) × kvHeads·headDim]`, row stride `kvStride`.
/// * `out`: `[rows × heads·headDim]`, row stride `outStride`.
///
/// As transformers' eager attention: scores = q·kᵀ · (1/√headDim), softmax over the visible
/// keys in float32 (masked keys get probability 0), then probabilities · v.
package enum CausalAttention {
    /// Queries at or below this many rows use the direct path (per-head dot products, heads in
    /// parallel); more rows go through sgemm in blocks of query rows.
    static let directMaxRows = 4
    /// Query rows per sgemm block (bounds the score buffer to blockRows × keys floats).
    static let blockRows = 128

    package static func compute(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                               keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
                               heads: Int, kvHeads: Int, headDim: Int,
                               out: UnsafeMutablePointer<Float>, outStride: Int, context: ComputeContext) {
        guard rows > 0 else { return }
        precondition(kvHeads > 0 && heads % kvHeads == 0, "query heads must be a multiple of key/value heads")
        if rows <= directMaxRows {
            direct(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                   kvStride: kvStride, heads: heads, kvHeads: kvHeads, headDim: headDim, out: out,
                   outStride: outStride, threads: context.threads)
        } else {
            blocked(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                    kvStride: kvStride, heads: heads, kvHeads: kvHeads, headDim: headDim, out: out,
                    outStride: outStride, threads: context.threads)
        }
    }

    /// Few query rows (decoding): one task per (row, head); each walks its visible keys.
    static func direct(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                       keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
                       heads: Int, kvHeads: Int, headDim: Int,
                       out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let group = heads / kvHeads
        let scale = Float(1 / Double(headDim).squareRoot())
        let keyCount = start + rows
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * heads * keyCount)
        defer { scores.deallocate() }
        let s = SendablePointer(scores), o = SendablePointer(out)
        parallelFor(rows * heads, threads: threads) { task in
            let r = task / heads, h = task % heads
            let g = h / group
            let visible = start + r + 1
            let q = queries + r * queryStride + h * headDim
            let p = s.p + task * keyCount
            for j in 0..<visible {
                p[j] = dot(q, keys + j * kvStride + g * headDim, headDim) * scale
            }
            Activation.softmaxRows(p, rows: 1, cols: visible)
            let y = o.p + r * outStride + h * headDim
            for i in 0..<headDim { y[i] = 0 }
            for j in 0..<visible {
                accumulate(p[j], values + j * kvStride + g * headDim, into: y, count: headDim)
            }
        }
    }

    /// Many query rows (prefill): per head and block of query rows, scores by sgemm over the
    /// keys the block can see, the causal mask and softmax per row, then sgemm with the values.
    static func blocked(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
                        heads: Int, kvHeads: Int, headDim: Int,
                        out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let group = heads / kvHeads
        let scale = Float(1 / Double(headDim).squareRoot())
        let block = min(blockRows, rows)
        let maxKeys = start + rows
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * maxKeys)
        defer { scores.deallocate() }
        let s = SendablePointer(scores)
        for h in 0..<heads {
            let g = h / group
            var r0 = 0
            while r0 < rows {
                let n = min(block, rows - r0)
                let keyCount = start + r0 + n
                BLAS.sgemm(transB: true, m: n, n: keyCount, k: headDim, alpha: scale,
                           a: queries + r0 * queryStride + h * headDim, lda: queryStride,
                           b: keys + g * headDim, ldb: kvStride, c: scores, ldc: keyCount)
                let parts = chunks(n, parts: threads)
                let rowBase = r0
                parallelFor(parts.count, threads: threads) { part in
                    for i in parts[part] {
                        let row = s.p + i * keyCount
                        let visible = start + rowBase + i + 1
                        Activation.softmaxRows(row, rows: 1, cols: visible)
                        for j in visible..<keyCount { row[j] = 0 }
                    }
                }
                BLAS.sgemm(m: n, n: headDim, k: keyCount, a: scores, lda: keyCount,
                           b: values + g * headDim, ldb: kvStride,
                           c: out + r0 * outStride + h * headDim, ldc: outStride)
                r0 += n
            }
        }
    }

    /// y += a·x over `count` floats.
    @inline(__always)
    static func accumulate(_ a: Float, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let av = SIMD16<Float>(repeating: a)
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 16 <= count {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                + av * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { y[i] += a * x[i]; i += 1 }
    }
}
