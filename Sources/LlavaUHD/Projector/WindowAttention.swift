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

    /// What a call prepares once for all views: the projected queries (`[windows · sets, E]`,
    /// window-major, from `projectQueries`) and the key and value weights widened to F32.
    struct CallState {
        let sets: Int
        let windows: Int
        let queries: [Float]
        let keyWeight: FloatStorage
        let valueWeight: FloatStorage
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

    /// Widens the key and value in-projections for one call.
    func callState(projectedQueries: [Float], sets: Int, windows: Int) -> CallState {
        let e = embedDim
        let wk = FloatStorage(count: e * e), wv = FloatStorage(count: e * e)
        inProjWeight.convert(from: e * e, count: e * e, into: wk.pointer)
        inProjWeight.convert(from: 2 * e * e, count: e * e, into: wv.pointer)
        return CallState(sets: sets, windows: windows, queries: projectedQueries, keyWeight: wk, valueWeight: wv)
    }

    /// `Wk_hᵀ q` for every window of `windows`, set and head, into `out`: rows ordered
    /// (window, set, head), `[windows.count · sets · heads, E]`. One product per head over all
    /// the block's (window, set) rows; heads are split across threads.
    func keySpaceQueries(_ state: CallState, windows: Range<Int>, into out: UnsafeMutablePointer<Float>, threads: Int) {
        let e = embedDim, d = headDim, heads = heads
        let o = SendablePointer(out)
        state.queries.withUnsafeBufferPointer { q in
            let qp = SendablePointer(UnsafeMutablePointer(mutating: q.baseAddress!))
            let wk = SendablePointer(state.keyWeight.pointer)
            parallelFor(heads, threads: threads) { h in
                BLAS.sgemm(m: windows.count * state.sets, n: e, k: d,
                           a: qp.p + windows.lowerBound * state.sets * e + h * d, lda: e,
                           b: wk.p + h * d * e, ldb: e, c: o.p + h * e, ldc: heads * e, threads: 1)
            }
        }
    }

    /// Attention of one view over a block of `count` windows. `keyQueries` comes from
    /// `keySpaceQueries` for the same block; `keys` and `values` are `[count, keysPerWindow, E]`
    /// (window-major); `mixed` is scratch of `keyQueries`' size. Writes the heads' outputs
    /// before the out-projection and without the value bias, `[count · sets, E]` rows ordered
    /// (window, set), to `out`. Windows, then heads, are split across threads.
    func attend(_ state: CallState, keyQueries: UnsafePointer<Float>, count: Int, keysPerWindow: Int,
                keys: UnsafePointer<Float>, values: UnsafePointer<Float>, mixed: UnsafeMutablePointer<Float>,
                into out: UnsafeMutablePointer<Float>, threads: Int) {
        let e = embedDim, d = headDim, heads = heads, rowsPerWindow = state.sets * heads
        let q = SendablePointer(UnsafeMutablePointer(mutating: keyQueries))
        let k = SendablePointer(UnsafeMutablePointer(mutating: keys))
        let v = SendablePointer(UnsafeMutablePointer(mutating: values))
        let m = SendablePointer(mixed), o = SendablePointer(out)
        let parts = chunks(count, parts: threads)
        parallelFor(parts.count, threads: threads) { part in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerWindow * keysPerWindow)
            defer { scores.deallocate() }
            for i in parts[part] {
                BLAS.sgemm(transB: true, m: rowsPerWindow, n: keysPerWindow, k: e, a: q.p + i * rowsPerWindow * e, lda: e,
                           b: k.p + i * keysPerWindow * e, ldb: e, c: scores, ldc: keysPerWindow, threads: 1)
                Activation.softmaxRows(scores, rows: rowsPerWindow, cols: keysPerWindow)
                BLAS.sgemm(m: rowsPerWindow, n: e, k: keysPerWindow, a: scores, lda: keysPerWindow,
                           b: v.p + i * keysPerWindow * e, ldb: e, c: m.p + i * rowsPerWindow * e, ldc: e, threads: 1)
            }
        }
        // Head h of row (window, set) = Wv_h · mixed[(window, set, h)]; those rows are `heads`
        // apart.
        let wv = SendablePointer(state.valueWeight.pointer)
        parallelFor(heads, threads: threads) { h in
            BLAS.sgemm(transB: true, m: count * state.sets, n: d, k: e, a: m.p + h * e, lda: heads * e,
                       b: wv.p + h * d * e, ldb: e, c: o.p + h * d, ldc: e, threads: 1)
        }
    }

    /// `out = (x + bv)·Woᵀ + bo` for `rows` rows of heads' outputs; with `int8`, against Wo's
    /// Q8_0 copy with that kernel (`MatrixArithmetic.int8`).
    func outputProjection(_ x: UnsafeMutablePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>,
                          int8: (weight: QuantizedMatrix, kernel: QuantKernel?)? = nil, context: ComputeContext) {
        let e = embedDim
        var valueBias = [Float](repeating: 0, count: e)
        inProjBias.convert(from: 2 * e, count: e, into: &valueBias)
        for r in 0..<rows { for j in 0..<e { x[r * e + j] += valueBias[j] } }
        if let int8 {
            MatMul.linear(x, rows: rows, weight: int8.weight, into: out, context: context, kernel: int8.kernel)
        } else {
            MatMul.linear(x, rows: rows, weight: outProjWeight, into: out, context: context)
        }
        let bias = outProjBias.floats()
        for r in 0..<rows { for j in 0..<e { out[r * e + j] += bias[j] } }
    }
}
