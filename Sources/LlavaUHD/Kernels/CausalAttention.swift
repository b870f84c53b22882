#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD

/// Scaled dot-product attention with a causal mask, for a decoder whose keys and values sit
/// in a cache: query row r is at position `start + r` and attends to the keys at positions
/// `0 ... start + r`. Grouped-query attention: query head h reads key/value head
/// `h / (heads / kvHeads)`.
///
/// Layouts (row-major, one row per position):
/// * `queries`: `[rows × heads·headDim]` float32, row stride `queryStride`.
/// * `keys`, `values`: the cache's `[(start + rows) × kvHeads·headDim]` matrices (`KVMatrix`),
///   float32, F16 or BF16. 16-bit values are widened in registers when decoding; in prefill,
///   block by block of 48 positions into cache-resident float32 blocks (the fused kernel on
///   CPUs with AVX-512), or else one key/value head's visible rows at a time into the running
///   thread's float32 scratch for sgemm (never the whole cache per token).
/// * `out`: `[rows × heads·headDim]` float32, row stride `outStride`.
///
/// As transformers' eager attention: scores = q·kᵀ · (1/√headDim), softmax over the visible
/// keys in float32 (masked keys get probability 0), then probabilities · v.
package enum CausalAttention {
    /// Queries at or below this many rows use the direct path (decoding); more rows take the
    /// fused prefill kernel (`flash`) on CPUs with AVX-512, else sgemm in blocks of query rows
    /// (`blocked`).
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
        if flashAvailable {
            flash(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                  heads: heads, kvHeads: kvHeads, headDim: headDim, out: out, outStride: outStride, threads: threads)
            return
        }
        blocked(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                heads: heads, kvHeads: kvHeads, headDim: headDim, out: out, outStride: outStride, threads: threads)
    }

    /// True when this CPU runs the fused prefill kernel (`flash`: AVX-512 F/BW/VL/DQ); others
    /// take `blocked`.
    package static let flashAvailable = luhd_flash_attention_available() != 0

    /// Many query rows (prefill) on CPUs with AVX-512: the fused kernel of
    /// Sources/CLlavaUHD/include/flash_attention.h, one task per key/value head and tile of
    /// `LUHD_FLASH_QUERY_ROWS` query rows, the tiles with the most keys first (tasks are handed
    /// out dynamically, so the long ones do not end up last on one thread). A task reads the keys
    /// and values its rows see once, in blocks of `LUHD_FLASH_KEY_BLOCK` positions widened in
    /// cache-resident float32 blocks shared by all query heads of the group, and keeps scores and
    /// probabilities in those blocks (online softmax). Each row's result depends only on its query
    /// and the keys and values at its visible positions: the same bits for any `threads`, and
    /// whether the row comes in one prefill or in smaller ones.
    static func flash(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                      keys: KVMatrix, values: KVMatrix,
                      heads: Int, kvHeads: Int, headDim: Int,
                      out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let group = heads / kvHeads
        let scale = Float(1 / Double(headDim).squareRoot())
        let tileRows = Int(LUHD_FLASH_QUERY_ROWS)
        let tiles = (rows + tileRows - 1) / tileRows
        let type: Int32
        switch keys.type {
        case .float32: type = Int32(LUHD_FLASH_KV_F32)
        case .float16: type = Int32(LUHD_FLASH_KV_F16)
        case .bfloat16: type = Int32(LUHD_FLASH_KV_BF16)
        }
        let bytes = keys.type.bytesPerValue
        let workFloats = (luhd_flash_attention_work_bytes(headDim, group) + 3) / 4
        let o = SendablePointer(out)
        parallelFor(tiles * kvHeads, threads: threads) { task in
            let tile = tiles - 1 - task / kvHeads, g = task % kvHeads
            let r0 = tile * tileRows, n = min(tileRows, rows - r0)
            MatMul.withScratch(floats: workFloats) { work in
                luhd_flash_attention(type, keys.base + g * headDim * bytes, values.base + g * headDim * bytes, keys.stride,
                                     headDim, group, queries + r0 * queryStride + g * group * headDim, queryStride,
                                     start + r0, n, scale, o.p + r0 * outStride + g * group * headDim, outStride, work)
            }
        }
    }

    /// Few query rows (decoding). A 16-bit cache: flash-decoding, one task per row and stretch of
    /// consecutive visible positions (`stretchLength`: about 16 per row, whatever `threads`), which
    /// reads its stretch's rows of the keys and then of the values whole, every head at once, as
    /// the cache stores them (one sequential stream per thread instead of each head's slice of
    /// every row at the row stride): per query head the softmax over the stretch (its largest
    /// score `m`, the sum `l` of `exp(s - m)`) and the attention output over the stretch `o`
    /// (`attention_partial_f16` / `_bf16`). The row's stretches are then combined in their order,
    /// per query head: with `M` the largest `m` and `w = exp(m - M)·l` (double),
    /// `out = Σ (w / Σ w) · o`; a row of one stretch (at most `minStretchLength` positions) gets
    /// `o` itself, the plain softmax-then-values result. Each row's result depends only on its own
    /// visible positions, so a row gets the same bits alone, among other rows, or in a batched
    /// decode step. A float32 cache: `float32Rows`.
    static func direct(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                       keys: KVMatrix, values: KVMatrix,
                       heads: Int, kvHeads: Int, headDim: Int,
                       out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        if keys.type != .float32 {
            partialStretches(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys, values: values,
                             heads: heads, kvHeads: kvHeads, headDim: headDim, out: out, outStride: outStride, threads: threads)
            return
        }
        float32Rows(queries: queries, rows: rows, queryStride: queryStride, start: start, keys: keys.floats,
                    values: values.floats, kvStride: keys.stride, heads: heads, group: heads / kvHeads, headDim: headDim,
                    scale: Float(1 / Double(headDim).squareRoot()), out: out, outStride: outStride, threads: threads)
    }

    /// The float32 cache's decoding path of `direct`: per row and query head h (key/value head
    /// g = h / group), scores `dot(q_h, k_j) · scale` over the visible positions j, softmax over
    /// all of them (`Activation.softmaxRows`), then `y_h = Σ_j p_h[j]·v_j` from zero in j order
    /// (`accumulate`). Split so that the cache streams in rows: the scores by stretches of
    /// positions (`stretchLength`), each task reading its keys' rows whole (every head at once);
    /// the softmax and values by runs of query heads, each task reading the slice of each value
    /// row its heads cover, row after row (a task per head read 512 bytes of every 16 KB row,
    /// page after page: 3.7× the F16 path's time for 2× its bytes, BENCHMARKS.md
    /// notes:decode10). Each (row, head) result is computed in the same order whatever the split
    /// and `threads`: the same bits alone, among other rows, on any thread count.
    static func float32Rows(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                            keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int,
                            heads: Int, group: Int, headDim: Int, scale: Float,
                            out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let keyCount = start + rows
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * heads * keyCount)
        defer { scores.deallocate() }
        let s = SendablePointer(scores), o = SendablePointer(out)
        var stretches: [(row: Int, range: Range<Int>)] = []
        for r in 0..<rows {
            let visible = start + r + 1, length = stretchLength(visible: visible)
            for first in Swift.stride(from: 0, to: visible, by: length) { stretches.append((r, first..<min(visible, first + length))) }
        }
        stretches.withUnsafeBufferPointer { list in
            parallelFor(list.count, threads: threads) { t in
                let (r, range) = list[t]
                for j in range {
                    let k = keys + j * kvStride
                    for h in 0..<heads {
                        let q = queries + r * queryStride + h * headDim
                        s.p[(r * heads + h) * keyCount + j] = dot(q, k + h / group * headDim, headDim) * scale
                    }
                }
            }
        }
        // Runs of query heads of at least 2048 output values each (without grouping, 8 KB of each
        // value row per task), a count that depends on the shape only.
        let runs = chunks(heads, parts: max(1, min(heads, heads * headDim / 2048)))
        parallelFor(rows * runs.count, threads: threads) { task in
            let r = task / runs.count, run = runs[task % runs.count]
            let visible = start + r + 1
            for h in run {
                Activation.softmaxRows(s.p + (r * heads + h) * keyCount, rows: 1, cols: visible)
                let y = o.p + r * outStride + h * headDim
                for i in 0..<headDim { y[i] = 0 }
            }
            for j in 0..<visible {
                let v = values + j * kvStride
                for h in run {
                    accumulate(s.p[(r * heads + h) * keyCount + j], v + h / group * headDim, into: o.p + r * outStride + h * headDim,
                               count: headDim)
                }
            }
        }
    }

    /// Most stretches one decoded row's visible positions are split into.
    static let maxStretches = 16
    /// Fewest positions in a stretch (fewer stretches for short contexts).
    static let minStretchLength = 64

    /// Positions per stretch for a row that sees `visible` positions: a multiple of 16, at least
    /// `minStretchLength`, so that there are at most `maxStretches` (the last one shorter).
    static func stretchLength(visible: Int) -> Int {
        max(minStretchLength, (visible + 16 * maxStretches - 1) / (16 * maxStretches) * 16)
    }

    /// The 16-bit cache's decoding path of `direct` (see there).
    static func partialStretches(queries: UnsafePointer<Float>, rows: Int, queryStride: Int, start: Int,
                                 keys: KVMatrix, values: KVMatrix,
                                 heads: Int, kvHeads: Int, headDim: Int,
                                 out: UnsafeMutablePointer<Float>, outStride: Int, threads: Int) {
        let group = heads / kvHeads
        let scale = Float(1 / Double(headDim).squareRoot())
        let kvStride = keys.stride
        // The stretches, row by row in position order: (row, first position, positions).
        var stretches: [(row: Int, first: Int, count: Int)] = []
        var longest = 0
        for r in 0..<rows {
            let visible = start + r + 1, length = stretchLength(visible: visible)
            longest = max(longest, min(length, visible))
            for first in Swift.stride(from: 0, to: visible, by: length) {
                stretches.append((r, first, min(length, visible - first)))
            }
        }
        // Per stretch: scores [heads × longest], o [heads × headDim], m [heads]; l [heads] apart.
        let floatsPerStretch = heads * (longest + headDim + 1)
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: stretches.count * floatsPerStretch)
        defer { floats.deallocate() }
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: stretches.count * heads)
        defer { sums.deallocate() }
        let f = SendablePointer(floats), l = SendablePointer(sums)
        let table = VectorKernels.table
        let partial = keys.type == .bfloat16 ? table.attention_partial_bf16 : table.attention_partial_f16
        stretches.withUnsafeBufferPointer { list in
            parallelFor(list.count, threads: threads) { t in
                let (r, first, count) = list[t]
                let base = f.p + t * floatsPerStretch
                partial(keys.halves + first * kvStride, values.halves + first * kvStride, kvStride, count, headDim, kvHeads, group,
                        queries + r * queryStride, scale, base, base + heads * (longest + headDim), l.p + t * heads,
                        base + heads * longest)
            }
        }
        // Combine each row's stretches in order.
        var t0 = 0
        var weights = [Double](repeating: 0, count: maxStretches)
        for r in 0..<rows {
            var t1 = t0
            while t1 < stretches.count && stretches[t1].row == r { t1 += 1 }
            for h in 0..<heads {
                let y = out + r * outStride + h * headDim
                for i in 0..<headDim { y[i] = 0 }
                var top = -Float.infinity   // the largest m; NaN when one is (then so is the output)
                for t in t0..<t1 where !top.isNaN {
                    let m = floats[t * floatsPerStretch + heads * (longest + headDim) + h]
                    if m.isNaN || m > top { top = m }
                }
                guard top != -Float.infinity else { continue }   // every score -inf: no position to attend
                var total = 0.0
                for t in t0..<t1 {
                    let m = floats[t * floatsPerStretch + heads * (longest + headDim) + h]
                    weights[t - t0] = exp(Double(m) - Double(top)) * sums[t * heads + h]
                    total += weights[t - t0]
                }
                for t in t0..<t1 {
                    accumulate(Float(weights[t - t0] / total), floats + t * floatsPerStretch + heads * longest + h * headDim,
                               into: y, count: headDim)
                }
            }
            t0 = t1
        }
    }

    /// Many query rows (prefill) on CPUs without AVX-512: one task per key/value head and block of
    /// `blockRows` query rows, the blocks with the most keys first (tasks are handed out dynamically, so the long
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
