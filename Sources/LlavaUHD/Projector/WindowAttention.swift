/// The projector's shared `nn.MultiheadAttention(E, E/128)` (in-projections with bias, scale
/// 1/√128, out-projection with bias) applied window by window: query i of each query set
/// attends only to window i's keys (SPEC §4 steps 5–6; upstream `query_with_parallel_attn`).
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

    /// One view's pooled keys and values of one level, for the windows of a block: window i
    /// (counted from the block's first) owns rows `i·perWindow ..< (i+1)·perWindow`.
    struct KeySegment {
        let keys: UnsafePointer<Float>
        let values: UnsafePointer<Float>
        let perWindow: Int
    }

    /// What a call prepares once for all views: the projected queries (`[sets · windows, E]`,
    /// set-major, from `projectQueries`) and the key and value weights widened to F32.
    struct CallState {
        let sets: Int
        let windows: Int
        let queries: [Float]
        let keyWeight: FloatStorage
        let valueWeight: FloatStorage
    }

    /// `(q·Wqᵀ + bq)/√headDim` for query rows `queries` (`[rows, E]`: LN_q(query_k) +
    /// pos_embed). They depend only on the weights, so projectors compute them once.
    func projectQueries(_ queries: [Float], context: ComputeContext) -> [Float] {
        let e = embedDim, rows = queries.count / e
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
        for r in 0..<rows { for j in 0..<e { q[r * e + j] = (q[r * e + j] + bias[j]) * scale } }
        return q
    }

    /// Widens the key and value in-projections for one call.
    func callState(projectedQueries: [Float], sets: Int, windows: Int) -> CallState {
        let e = embedDim
        let wk = FloatStorage(count: e * e), wv = FloatStorage(count: e * e)
        inProjWeight.convert(from: e * e, count: e * e, into: wk.pointer)
        inProjWeight.convert(from: 2 * e * e, count: e * e, into: wv.pointer)
        return CallState(sets: sets, windows: windows, queries: projectedQueries, keyWeight: wk, valueWeight: wv)
    }

    /// `Wk_hᵀ q` for every set, head and window of `windows`: rows ordered (window, set,
    /// head), `[count · sets · heads, E]`.
    func keySpaceQueries(_ state: CallState, windows: Range<Int>) -> [Float] {
        let e = embedDim, d = headDim, rowsPerWindow = state.sets * heads
        var out = [Float](repeating: 0, count: windows.count * rowsPerWindow * e)
        state.queries.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                for k in 0..<state.sets {
                    for h in 0..<heads {
                        BLAS.sgemm(m: windows.count, n: e, k: d,
                                   a: q.baseAddress! + (k * state.windows + windows.lowerBound) * e + h * d, lda: e,
                                   b: state.keyWeight.pointer + h * d * e, ldb: e,
                                   c: o.baseAddress! + (k * heads + h) * e, ldc: rowsPerWindow * e)
                    }
                }
            }
        }
        return out
    }

    /// Attention of one view over a block of `count` windows. `keyQueries` comes from
    /// `keySpaceQueries` for the same block; `segments` are the view's levels in order. Writes
    /// the heads' outputs before the out-projection and without the value bias,
    /// `[count · sets, E]` rows ordered (window, set), to `out`.
    func attend(_ state: CallState, keyQueries: UnsafePointer<Float>, count: Int, segments: [KeySegment],
                into out: UnsafeMutablePointer<Float>) {
        let e = embedDim, d = headDim, rowsPerWindow = state.sets * heads
        let keysPerWindow = segments.reduce(0) { $0 + $1.perWindow }
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerWindow * keysPerWindow)
        let mixed = UnsafeMutablePointer<Float>.allocate(capacity: count * rowsPerWindow * e)
        defer { scores.deallocate(); mixed.deallocate() }
        for i in 0..<count {
            let q = keyQueries + i * rowsPerWindow * e
            var column = 0
            for s in segments {
                BLAS.sgemm(transB: true, m: rowsPerWindow, n: s.perWindow, k: e, a: q, lda: e,
                           b: s.keys + i * s.perWindow * e, ldb: e, c: scores + column, ldc: keysPerWindow)
                column += s.perWindow
            }
            Activation.softmaxRows(scores, rows: rowsPerWindow, cols: keysPerWindow)
            column = 0
            for (n, s) in segments.enumerated() {
                BLAS.sgemm(m: rowsPerWindow, n: e, k: s.perWindow, a: scores + column, lda: keysPerWindow,
                           b: s.values + i * s.perWindow * e, ldb: e, beta: n == 0 ? 0 : 1,
                           c: mixed + i * rowsPerWindow * e, ldc: e)
                column += s.perWindow
            }
        }
        // Head h of row (window, set) = Wv_h · mixed[(window, set, h)]; those rows are `heads`
        // apart.
        for h in 0..<heads {
            BLAS.sgemm(transB: true, m: count * state.sets, n: d, k: e, a: mixed + h * e, lda: heads * e,
                       b: state.valueWeight.pointer + h * d * e, ldb: e, c: out + h * d, ldc: e)
        }
    }

    /// `out = (x + bv)·Woᵀ + bo` for `rows` rows of heads' outputs.
    func outputProjection(_ x: UnsafeMutablePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>,
                          context: ComputeContext) {
        let e = embedDim
        var valueBias = [Float](repeating: 0, count: e)
        inProjBias.convert(from: 2 * e, count: e, into: &valueBias)
        for r in 0..<rows { for j in 0..<e { x[r * e + j] += valueBias[j] } }
        MatMul.linear(x, rows: rows, weight: outProjWeight, into: out, context: context)
        let bias = outProjBias.floats()
        for r in 0..<rows { for j in 0..<e { out[r * e + j] += bias[j] } }
    }
}
