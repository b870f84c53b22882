/// The projector's shared `nn.MultiheadAttention(E, E/128)` (in-projections with bias, scale
/// 1/√128, out-projection with bias) applied window by window: query i of each query set
/// attends only to window i's keys (docs/MODEL.md §4 steps 5–6; upstream `query_with_parallel_attn`).
///
/// The keys and values are never projected. Window i has only `sets` queries but
/// `levels · ph · pw` keys (4 vs 27 in v2), so the projections move to the query side:
/// a head's score is `q_h·(Wk_h k + bk_h) = (Wk_hᵀ q_h)·k + const` (the constant drops out of
/// the softmax), and its output is `Wv_h (Σ_j a_j v_j) + bv_h` (the weights sum to 1).
/// `Wk_hᵀ q_h` depends only on the weights, so it is computed once per call for all views.
final class WindowAttention: @unchecked Sendable {
    let embedDim: Int
    let heads: Int
    let headDim: Int
    let inProjWeight: TensorView
    let inProjBias: TensorView
    let outProjWeight: TensorView
    let outProjBias: TensorView

    init(checklist: inout WeightChecklist, embedDim: Int, heads: Int) {
        self.embedDim = embedDim
        self.heads = heads
        headDim = embedDim / heads
        inProjWeight = checklist.tensor("attn.in_proj_weight", shape: [3 * embedDim, embedDim])
        inProjBias = checklist.tensor("attn.in_proj_bias", shape: [3 * embedDim])
        outProjWeight = checklist.tensor("attn.out_proj.weight", shape: [embedDim, embedDim])
        outProjBias = checklist.tensor("attn.out_proj.bias", shape: [embedDim])
    }

    /// Q8_0 copies of the value in-projection (one `[headDim, E]` matrix per head, so that
    /// each head's product reads its own rows) and of out_proj, with the kernel that multiplies
    /// them (`MatrixArithmetic.int8`; `HiwinProjector` makes them at load).
    struct Int8Weights {
        let valueHeads: [QuantizedMatrix]
        let outProj: QuantizedMatrix
        let kernel: QuantKernel?
    }

    /// The Q8_0 copies (`Int8Product.quantize`, on `threads`), or nil when one cannot be made
    /// (row length not a multiple of 32, no memory): the products then stay float32.
    func int8Weights(kernel: QuantKernel?, threads: Int) -> Int8Weights? {
        let e = embedDim, d = headDim, w = inProjWeight
        var valueHeads: [QuantizedMatrix] = []
        for h in 0..<heads {
            let rows = TensorView(name: "\(w.name)[value head \(h)]", dtype: w.dtype, shape: [d, e],
                                  data: w.data + (2 * e + h * d) * e * w.dtype.size, owner: w.owner)
            guard let q = Int8Product.quantize([rows], threads: threads) else { return nil }
            valueHeads.append(q)
        }
        guard let out = Int8Product.quantize([outProjWeight], threads: threads) else { return nil }
        return Int8Weights(valueHeads: valueHeads, outProj: out, kernel: kernel)
    }

    /// What a call prepares once for all views: the projected queries (`[windows · sets, E]`,
    /// window-major, from `projectQueries`) and the key and value weights widened to F32 (the
    /// key weight nil when the key-space queries read the BF16 in-projection in place,
    /// `readsBF16Keys`).
    struct CallState {
        let sets: Int
        let windows: Int
        let queries: [Float]
        let keyWeight: FloatStorage?
        let valueWeight: FloatStorage
    }

    /// Whether the key-space queries read a BF16 in-projection in place (`SmallKProduct`'s BF16
    /// form, AVX-512: the same values) instead of widening the key weight for every call. (The
    /// value heads keep a widened copy: `BF16WeightProduct` on their 128 strided rows per head
    /// ran at 0.86-0.92x of OpenBLAS in a one-thread harness.)
    var readsBF16Keys: Bool {
        inProjWeight.dtype == .bf16 && Int(bitPattern: inProjWeight.data) % 2 == 0 && SmallKProduct.usesKernel
    }

    /// Rows `[first, first + count)` of the in-projection as a `[count, E]` tensor view.
    func inProjRows(_ first: Int, count: Int) -> TensorView {
        let w = inProjWeight
        return TensorView(name: "\(w.name)[\(first)..<\(first + count)]", dtype: w.dtype, shape: [count, embedDim],
                          data: w.data + first * embedDim * w.dtype.size, owner: w.owner)
    }

    /// `(q·Wqᵀ + bq)/√headDim` for the query rows `queries` (`[sets · windows, E]`, set-major:
    /// LN_q(query_k) + pos_embed), returned window-major (row `window·sets + set`). They
    /// depend only on the weights, so projectors compute them once.
    func projectQueries(_ queries: [Float], sets: Int, context: ComputeContext) -> [Float] {
        let e = embedDim, rows = queries.count / e, windows = rows / sets
        let wq = TensorView(name: inProjWeight.name, dtype: inProjWeight.dtype, shape: [e, e],
                            data: inProjWeight.data, owner: inProjWeight.owner)
        var q = [Float](repeating: 0, count: rows * e)
        queries.withUnsafeBufferPointer { x in
            q.withUnsafeMutableBufferPointer { out in
                MatMul.linear(x.baseAddress!, rows: rows, weight: wq, into: out.baseAddress!, context: context)
            }
        }
        let bias = inProjBias.floats()
        let scale = 1 / Float(headDim).squareRoot()
        var out = [Float](repeating: 0, count: rows * e)
        for k in 0..<sets {
            for i in 0..<windows {
                let src = (k * windows + i) * e, dst = (i * sets + k) * e
                for j in 0..<e { out[dst + j] = (q[src + j] + bias[j]) * scale }
            }
        }
        return out
    }

    /// Widens the value in-projection, and the key one unless `readsBF16Keys`, for one call.
    func callState(projectedQueries: [Float], sets: Int, windows: Int) -> CallState {
        let e = embedDim
        let wv = FloatStorage(count: e * e)
        inProjWeight.convert(from: 2 * e * e, count: e * e, into: wv.pointer)
        var wk: FloatStorage? = nil
        if !readsBF16Keys {
            wk = FloatStorage(count: e * e)
            inProjWeight.convert(from: e * e, count: e * e, into: wk!.pointer)
        }
        return CallState(sets: sets, windows: windows, queries: projectedQueries, keyWeight: wk, valueWeight: wv)
    }

    /// `Wk_hᵀ q` for every window of `windows`, set and head, into `out`: rows ordered
    /// (window, set, head), `[windows.count · sets · heads, E]`. One product per head over all
    /// the block's (window, set) rows; heads are split across threads.
    func keySpaceQueries(_ state: CallState, windows: Range<Int>, into out: UnsafeMutablePointer<Float>,
                         context: ComputeContext) {
        let e = embedDim, d = headDim, heads = heads, threads = context.threads
        let operations = 2.0 * Double(windows.count * state.sets * heads * d * e)
        context.timed("Hiwin key-space queries", operations: operations) {
            let o = SendablePointer(out)
            state.queries.withUnsafeBufferPointer { q in
                let qp = SendablePointer(UnsafeMutablePointer(mutating: q.baseAddress!))
                if let keyWeight = state.keyWeight {
                    let wk = SendablePointer(keyWeight.pointer)
                    parallelFor(heads, threads: threads) { h in
                        SmallKProduct.multiply(m: windows.count * state.sets, n: e, k: d,
                                               a: qp.p + windows.lowerBound * state.sets * e + h * d, lda: e,
                                               b: wk.p + h * d * e, ldb: e, c: o.p + h * e, ldc: heads * e)
                    }
                } else {
                    let wk = SendablePointer(UnsafeMutablePointer(mutating: inProjRows(e, count: e).data
                        .assumingMemoryBound(to: UInt16.self)))
                    parallelFor(heads, threads: threads) { h in
                        SmallKProduct.multiply(m: windows.count * state.sets, n: e, k: d,
                                               a: qp.p + windows.lowerBound * state.sets * e + h * d, lda: e,
                                               bf16: wk.p + h * d * e, ldb: e, c: o.p + h * e, ldc: heads * e)
                    }
                }
            }
        }
    }

    /// The softmaxed scores of every view over a block of `count` windows, into `scores`
    /// (`[count, sets · heads, totalKeys]`). `keyQueries` comes from `keySpaceQueries` for the
    /// same block; `keys` is `[count, totalKeys, E]`: window i's keys of all views, view v's
    /// `segments[v].count` keys from row `segments[v].offset`. The key-space queries do not depend
    /// on the view, so one product per window (`sets · heads` × `totalKeys` × E) scores all views
    /// at once; the softmax then runs over each view's segment of a row. Windows are split
    /// across threads.
    func scores(_ state: CallState, keyQueries: UnsafePointer<Float>, count: Int, keys: UnsafePointer<Float>,
                totalKeys: Int, segments: [(offset: Int, count: Int)], into scores: UnsafeMutablePointer<Float>,
                context: ComputeContext) {
        let e = embedDim, rowsPerWindow = state.sets * heads, threads = context.threads
        let q = SendablePointer(UnsafeMutablePointer(mutating: keyQueries))
        let k = SendablePointer(UnsafeMutablePointer(mutating: keys))
        let s = SendablePointer(scores)
        let parts = chunks(count, parts: threads)
        context.timed("Hiwin attention scores", operations: 2.0 * Double(count * rowsPerWindow * totalKeys * e)) {
            parallelFor(parts.count, threads: threads) { part in
                let softmax = VectorKernels.table.softmax
                for i in parts[part] {
                    let window = s.p + i * rowsPerWindow * totalKeys
                    BLAS.sgemm(transB: true, m: rowsPerWindow, n: totalKeys, k: e, a: q.p + i * rowsPerWindow * e, lda: e,
                               b: k.p + i * totalKeys * e, ldb: e, c: window, ldc: totalKeys, threads: 1)
                    for r in 0..<rowsPerWindow {
                        for segment in segments { softmax(window + r * totalKeys + segment.offset, segment.count) }
                    }
                }
            }
        }
    }

    /// Attention of one view over a block of `count` windows, after `scores`: `scores` and
    /// `values` are that call's buffers (`[count, sets · heads, totalKeys]`, `[count, totalKeys, E]`)
    /// and `segment` the view's keys in them; `mixed` is scratch of `[count · sets · heads, E]`
    /// (64-byte aligned: it is written past the cache).
    /// Writes the heads' outputs before the out-projection and without the value bias,
    /// `[count · sets, E]` rows ordered (window, set), to `out`. Windows, then heads, are split
    /// across threads. With `int8`, the value heads run against their Q8_0 copies.
    func attend(_ state: CallState, scores: UnsafePointer<Float>, count: Int, totalKeys: Int,
                segment: (offset: Int, count: Int), values: UnsafePointer<Float>, mixed: UnsafeMutablePointer<Float>,
                into out: UnsafeMutablePointer<Float>, int8: Int8Weights? = nil, context: ComputeContext) {
        let e = embedDim, d = headDim, heads = heads, rowsPerWindow = state.sets * heads, threads = context.threads
        let p = SendablePointer(UnsafeMutablePointer(mutating: scores))
        let v = SendablePointer(UnsafeMutablePointer(mutating: values))
        let m = SendablePointer(mixed), o = SendablePointer(out)
        let parts = chunks(count, parts: threads)
        context.timed("Hiwin attention mixing", operations: 2.0 * Double(count * rowsPerWindow * segment.count * e)) {
            parallelFor(parts.count, threads: threads) { part in
                for i in parts[part] {
                    SmallKProduct.multiply(m: rowsPerWindow, n: e, k: segment.count,
                                           a: p.p + i * rowsPerWindow * totalKeys + segment.offset, lda: totalKeys,
                                           b: v.p + (i * totalKeys + segment.offset) * e, ldb: e,
                                           c: m.p + i * rowsPerWindow * e, ldc: e, streamingOutput: true)
                }
            }
        }
        // Head h of row (window, set) = Wv_h · mixed[(window, set, h)]; those rows are `heads`
        // apart.
        let rows = count * state.sets
        context.timed("Hiwin value heads", operations: 2.0 * Double(rows * e * e)) {
            if let int8 {
                // The int8 product prepares each head's rows straight from `mixed` (`heads·E`
                // floats apart), as `MatMul.linear` would prepare them contiguous: the same bits.
                // Other kernels read contiguous rows: each head's rows are gathered first (a copy
                // of E floats per row against the head's d·E multiply-adds per row).
                let single = ComputeContext(threads: 1)
                let inPlace = MatMul.int8ProductKernel(for: int8.valueHeads[0], rows: rows, kernel: int8.kernel, rowwise: false)
                parallelFor(heads, threads: threads) { h in
                    if let inPlace {
                        let x = PreparedInt8Rows(m.p + h * e, rows: rows, ldx: heads * e, columns: e,
                                                 blocking: .init(for: int8.valueHeads[h], kernel: inPlace), kernel: inPlace, threads: 1)
                        MatMul.int8Product(x, weight: int8.valueHeads[h], into: o.p + h * d, ldOut: e, threads: 1)
                        return
                    }
                    let gathered = UnsafeMutablePointer<Float>.allocate(capacity: rows * e)
                    defer { gathered.deallocate() }
                    for r in 0..<rows { (gathered + r * e).update(from: m.p + (r * heads + h) * e, count: e) }
                    MatMul.linear(gathered, rows: rows, weight: int8.valueHeads[h], into: o.p + h * d, ldOut: e,
                                  context: single, kernel: int8.kernel)
                }
                return
            }
            let wv = SendablePointer(state.valueWeight.pointer)
            parallelFor(heads, threads: threads) { h in
                BLAS.sgemm(transB: true, m: rows, n: d, k: e, a: m.p + h * e, lda: heads * e,
                           b: wv.p + h * d * e, ldb: e, c: o.p + h * d, ldc: e, threads: 1)
            }
        }
    }

    /// `out = (x + bv)·Woᵀ + bo` for `rows` rows of heads' outputs; with `int8`, against Wo's
    /// Q8_0 copy with that kernel (`MatrixArithmetic.int8`).
    func outputProjection(_ x: UnsafeMutablePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>,
                          int8: Int8Weights? = nil, context: ComputeContext) {
        let e = embedDim
        context.timed("Hiwin attention out_proj", operations: 2.0 * Double(rows * e * e)) {
            var valueBias = [Float](repeating: 0, count: e)
            inProjBias.convert(from: 2 * e, count: e, into: &valueBias)
            Elementwise.addRowVector(valueBias, to: x, rows: rows, cols: e, threads: context.threads)
            if let int8 {
                MatMul.linear(x, rows: rows, weight: int8.outProj, into: out, context: context, kernel: int8.kernel)
            } else {
                MatMul.linear(x, rows: rows, weight: outProjWeight, into: out, context: context)
            }
            Elementwise.addRowVector(outProjBias.floats(), to: out, rows: rows, cols: e, threads: context.threads)
        }
    }
}
