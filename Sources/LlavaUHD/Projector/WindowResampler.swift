import CLlavaUHD

/// One pyramid level of one view, prepared for pooling (see `LevelProjection`), with what
/// turns its samples into keys: the level embedding (Hiwin's `feature_{L}x_embedding`; none
/// in v1).
struct PooledLevel {
    let layout: WindowLayout
    let projection: LevelProjection
    let embedding: [Float]?
    let prepared: LevelProjection.Prepared
}

/// The part the Hiwin and v1 projectors share (docs/MODEL.md §4 steps 2–6, §8): values V = the pooled
/// level features, keys K = V + the pooled, bicubic-resized position table + the level
/// embedding, and the window attention of every query set, for all views of a call.
///
/// Work is done in blocks of windows: for each block the queries are moved into key space
/// once (they do not depend on the view), every view's keys and values for those windows are
/// formed (window-major: a window's keys are its views' in view order, each view's its levels'
/// samples in level order), all views are scored by one product per window, then each view's
/// values are mixed and projected. This bounds the memory to one block of E-wide keys and queries while
/// keeping the products large enough to run efficiently.
struct WindowResampler {
    let attention: WindowAttention
    /// The stored 2D sin-cos table `pos_embed`, `[grid², E]`.
    let positionTable: [Float]
    let grid: Int
    /// Whether the resized table is rounded to bfloat16 before it is added to the keys (see
    /// `PositionPooling`).
    let roundPositionsToBFloat16: Bool
    /// With `MatrixArithmetic.int8`: the attention's value heads and out_proj as Q8_0 copies.
    var int8: WindowAttention.Int8Weights? = nil

    /// Upper bound on each of one block's four E-wide buffers (key-space queries, mixed values,
    /// and the keys and the values of all views), in floats (96 MB each).
    static let blockBudget = 24 << 20

    /// `queries`: `[grid² · sets, E]` from `WindowAttention.projectQueries` (window-major);
    /// `views`: each view's levels in key order. Returns the attention outputs after the out-projection,
    /// `[views · grid² · sets, E]` with rows ordered (view, window, set).
    func run(queries: [Float], sets: Int, views: [[PooledLevel]], context: ComputeContext) throws(LlavaError) -> [Float] {
        let e = attention.embedDim, windows = grid * grid
        let keyCounts = views.map { $0.reduce(0) { $0 + $1.layout.samplesPerWindow } }
        // Every window's keys (and values) of all views are stored together, view v's from row
        // `segments[v].offset`, so that one product scores all views (`WindowAttention.scores`).
        var segments: [(offset: Int, count: Int)] = []
        var totalKeys = 0
        for count in keyCounts {
            segments.append((totalKeys, count))
            totalKeys += count
        }
        let state = context.timed("Hiwin key and value weights widened") {
            attention.callState(projectedQueries: queries, sets: sets, windows: windows)
        }
        let rowsPerView = windows * sets
        // Every value of `heads` is written by `attend` (all blocks, views and heads): no zeroing pass.
        let headValues = views.count * rowsPerView * e
        let heads = HugePages.allocateFloats(count: headValues)
        defer { heads.deallocate() }
        let rowsPerWindow = sets * attention.heads
        let blockSize = max(1, min(windows, Self.blockBudget / max(1, rowsPerWindow * e),
                                   Self.blockBudget / max(1, totalKeys * e)))

        // 64-byte aligned (the mixing writes `mixed` with non-temporal stores, see
        // `WindowAttention.attend`), advised for huge pages (fresh on every call).
        let keyQueries = HugePages.allocateFloats(count: blockSize * rowsPerWindow * e)
        let mixed = HugePages.allocateFloats(count: blockSize * rowsPerWindow * e)
        let keys = HugePages.allocateFloats(count: blockSize * totalKeys * e)
        let values = HugePages.allocateFloats(count: blockSize * totalKeys * e)
        let scores = HugePages.allocateFloats(count: blockSize * rowsPerWindow * totalKeys)
        let maxSamples = views.flatMap { $0.map(\.layout.samplesPerWindow) }.max() ?? 0
        let levelValues = UnsafeMutablePointer<Float>.allocate(capacity: blockSize * maxSamples * e)
        defer {
            keyQueries.deallocate(); mixed.deallocate(); keys.deallocate(); values.deallocate(); scores.deallocate()
            levelValues.deallocate()
        }
        var positionPooling: [String: PositionPooling] = [:]

        var w0 = 0
        while w0 < windows {
            try context.checkAbort("projector")
            let block = w0..<min(windows, w0 + blockSize)
            attention.keySpaceQueries(state, windows: block, into: keyQueries, context: context)
            var pooledPositions: [String: [Float]] = [:]
            for (v, levels) in views.enumerated() {
                var offset = segments[v].offset
                for level in levels {
                    let layout = level.layout, n = layout.samplesPerWindow
                    let cells = (block.lowerBound * n)..<(block.upperBound * n)
                    let key = "\(layout.height)x\(layout.width)"
                    if pooledPositions[key] == nil {
                        pooledPositions[key] = context.timed("Hiwin position pooling") {
                            let pooling = positionPooling[key] ?? PositionPooling(
                                table: positionTable, grid: grid, embedDim: e, layout: layout,
                                roundToBFloat16: roundPositionsToBFloat16)
                            positionPooling[key] = pooling
                            return pooling.pooled(cells: cells, threads: context.threads)
                        }
                    }
                    level.projection.values(level.prepared, layout: layout, cells: cells, into: levelValues, context: context)
                    let position = pooledPositions[key]!
                    let embedding = level.embedding ?? [Float](repeating: 0, count: e)
                    // Window i's samples go to rows offset ..< offset + n of its keys.
                    context.timed("Hiwin keys and values") {
                        position.withUnsafeBufferPointer { pb in
                            embedding.withUnsafeBufferPointer { eb in
                                let pos = SendablePointer(UnsafeMutablePointer(mutating: pb.baseAddress!))
                                let emb = SendablePointer(UnsafeMutablePointer(mutating: eb.baseAddress!))
                                let src = SendablePointer(levelValues), k = SendablePointer(keys), vv = SendablePointer(values)
                                let base = offset
                                parallelFor(block.count, threads: context.threads) { i in
                                    for t in 0..<n {
                                        let s = (i * n + t) * e, d = (i * totalKeys + base + t) * e
                                        luhd_proj_key_value_row(src.p + s, pos.p + s, emb.p, e, k.p + d, vv.p + d)
                                    }
                                }
                            }
                        }
                    }
                    offset += n
                }
                try context.checkAbort("projector")
            }
            attention.scores(state, keyQueries: keyQueries, count: block.count, keys: keys, totalKeys: totalKeys,
                             segments: segments, into: scores, context: context)
            for v in views.indices {
                try context.checkAbort("projector")
                attention.attend(state, scores: scores, count: block.count, totalKeys: totalKeys, segment: segments[v],
                                 values: values, mixed: mixed, into: heads + (v * rowsPerView + block.lowerBound * sets) * e,
                                 int8: int8, context: context)
            }
            w0 = block.upperBound
        }
        return HugePages.writtenFloats(count: headValues) { o in
            attention.outputProjection(heads, rows: views.count * rowsPerView, into: o, int8: int8, context: context)
        }
    }
}
