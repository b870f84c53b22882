/// Scaled dot-product attention with a causal mask, for a decoder whose keys and values sit
/// in a cache: query row r is at position `start + r` and attends to the keys at positions
/// `0 ... start + r`. Grouped-query attention: query head h reads key/value head
/// `h / (heads / kvHeads)`.
///
/// Layouts (row-major, one row per position):
/// * `queries`: `[rows × heads·headDim]` float32, row stride `queryStride`.
/// * `keys`, `values`: the cache's `[(start + rows) × kvHeads·headDim]` matrices (`KVMatrix`),
///   float32, F16 or BF16. 16-bit values are widened in registers when decoding, and for
///   prefill's matrix products one key/value head's visible rows at a time into the running
///   thread's float32 scratch (never the whole cache per token).
/// * `out`: `[rows × heads·headDim]` float32, row stride `outStride`.
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
                        keys: KVMatrix, values: KVMatrix,
                        heads: Int, kvHeads: Int, headDim: Int,
                        out: UnsafeMutablePointer<Float>, outStride: Int, context: ComputeContext) {
        guard rows > 0 else { return }
        precondition(kvHeads > 0 && heads % kvHeads == 0, "query heads must be a multiple of key/value heads")
        precondition(keys.type == values.type && keys.stride == values.stride, "keys and values differ in layout")
        let threads = context.threads
        if rows <= directMaxRows {
            direct(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                   heads: heads, kvHeads: kvHeads, headDim: headDim, out: out, outStride: outStride, threads: threads)
            return
        }
        blocked(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                heads: heads, kvHeads: kvHeads, headDim: headDim, out: out, outStride: outStride, threads: threads)
    }

    /// Few query rows (decoding). A 16-bit cache: one task per row and range of consecutive
    /// key/value heads (about two per thread), which reads its heads' slice of every visible
    /// row of the cache as one stretch (scores for all its query heads, softmax per head, then the
    /// values), instead of one head's few cache lines per row a page apart. A float32 cache: one
    /// task per (row, head). Every score and output is computed the same way either way.
    static func direct(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                       keys: KVMatrix, values: KVMatrix,
                       heads: Int, kvHeads: Int, headDim: Int,
                       out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let group = heads / kvHeads
        let scale = Float(1 / Double(headDim).squareRoot())
        let keyCount = start + rows
        let kvStride = keys.stride
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * heads * keyCount)
        defer { scores.deallocate() }
        let s = SendablePointer(scores), o = SendablePointer(out)
        let table = VectorKernels.table
        if keys.type != .float32 {
            let parts = chunks(kvHeads, parts: max(1, threads * 2))
            parallelFor(rows * parts.count, threads: threads) { task in
                let r = task / parts.count, kv = parts[task % parts.count]
                let visible = start + r + 1
                let h0 = kv.lowerBound * group
                let q = queries + r * queryStride + h0 * headDim
                let p = s.p + (r * heads + h0) * keyCount
                let y = o.p + r * outStride + h0 * headDim
                let k = keys.halves + kv.lowerBound * headDim, v = values.halves + kv.lowerBound * headDim
                if keys.type == .bfloat16 {
                    table.attention_scores_bf16(k, kvStride, visible, headDim, kv.count, group, q, scale, p, keyCount)
                } else {
                    table.attention_scores_f16(k, kvStride, visible, headDim, kv.count, group, q, scale, p, keyCount)
                }
                for t in 0..<(kv.count * group) { Activation.softmaxRows(p + t * keyCount, rows: 1, cols: visible) }
                if keys.type == .bfloat16 {
                    table.attention_values_bf16(v, kvStride, visible, headDim, kv.count, group, p, keyCount, y)
                } else {
                    table.attention_values_f16(v, kvStride, visible, headDim, kv.count, group, p, keyCount, y)
                }
            }
            return
        }
        parallelFor(rows * heads, threads: threads) { task in
            let r = task / heads, h = task % heads
            let g = h / group
            let visible = start + r + 1
            let q = queries + r * queryStride + h * headDim
            let p = s.p + task * keyCount
            let y = o.p + r * outStride + h * headDim
            let k = keys.floats + g * headDim, v = values.floats + g * headDim
            for j in 0..<visible {
                p[j] = dot(q, k + j * kvStride, headDim) * scale
            }
            Activation.softmaxRows(p, rows: 1, cols: visible)
            for i in 0..<headDim { y[i] = 0 }
            for j in 0..<visible {
                accumulate(p[j], v + j * kvStride, into: y, count: headDim)
            }
        }
    }

    /// Many query rows (prefill): one task per key/value head and block of `blockRows` query
    /// rows, the blocks with the most keys first (tasks are handed out dynamically, so the long
    /// ones do not end up last on one thread). A task reads the keys and values its block can see
    /// (`start + r0 + n` positions; a 16-bit cache's widened, exactly, into the running thread's
    /// scratch), then for each query head of the group: scores by sgemm, the causal mask and
    /// softmax per row, then sgemm with the values, all on the task's thread. Each product has
    /// the same shape, so the same fixed blocks and sums (`BLAS.sgemm`), whatever `threads`.
    static func blocked(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                        keys: KVMatrix, values: KVMatrix,
                        heads: Int, kvHeads: Int, headDim: Int,
                        out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let group = heads / kvHeads
        let scale = Float(1 / Double(headDim).squareRoot())
        let block = min(blockRows, rows)
        let blocks = (rows + block - 1) / block
        let widened = keys.type != .float32
        let o = SendablePointer(out)
        // With the host's threaded OpenBLAS, tasks run in turn (as `MatMul.forEachWeightTile`).
        parallelFor(blocks * kvHeads, threads: BLAS.callsRunInParallel ? threads : 1) { task in
            let b = blocks - 1 - task / kvHeads, g = task % kvHeads
            let r0 = b * block, n = min(block, rows - r0)
            let keyCount = start + r0 + n
            let kvFloats = widened ? 2 * keyCount * headDim : 0
            MatMul.withScratch(floats: kvFloats + n * keyCount) { scratch in
                let k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int
                if widened {
                    keys.widen(rows: keyCount, column: g * headDim, width: headDim, into: scratch)
                    values.widen(rows: keyCount, column: g * headDim, width: headDim, into: scratch + keyCount * headDim)
                    (k, v, kvStride) = (UnsafePointer(scratch), UnsafePointer(scratch + keyCount * headDim), headDim)
                } else {
                    (k, v, kvStride) = (UnsafePointer(keys.floats + g * headDim), UnsafePointer(values.floats + g * headDim), keys.stride)
                }
                let scores = scratch + kvFloats
                for h in (g * group)..<((g + 1) * group) {
                    BLAS.sgemm(transB: true, m: n, n: keyCount, k: headDim, alpha: scale,
                               a: queries + r0 * queryStride + h * headDim, lda: queryStride,
                               b: k, ldb: kvStride, c: scores, ldc: keyCount, threads: 1)
                    for i in 0..<n {
                        let row = scores + i * keyCount
                        let visible = start + r0 + i + 1
                        Activation.softmaxRows(row, rows: 1, cols: visible)
                        for j in visible..<keyCount { row[j] = 0 }
                    }
                    BLAS.sgemm(m: n, n: headDim, k: keyCount, a: scores, lda: keyCount, b: v, ldb: kvStride,
                               c: o.p + r0 * outStride + h * headDim, ldc: outStride, threads: 1)
                }
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
