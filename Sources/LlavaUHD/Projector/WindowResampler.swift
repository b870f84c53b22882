/// One pyramid level of one view, prepared for pooling (see `LevelProjection`), with what
/// turns its samples into keys: the level embedding (Hiwin's `feature_{L}x_embedding`; none
/// in v1).
struct PooledLevel {
    let layout: WindowLayout
    let projection: LevelProjection
    let embedding: [Float]?
    let prepared: LevelProjection.Prepared
}

/// The part the Hiwin and v1 projectors share (SPEC §4 steps 2–6, §8): values V = the pooled
/// level features, keys K = V + the pooled, bicubic-resized position table + the level
/// embedding, and the window attention of every query set, for all views of a call.
///
/// Work is done in blocks of windows: for each block the queries are moved into key space
/// once (they do not depend on the view), then every view's keys and values for those
/// windows are formed and attended to. This bounds the memory to one block of E-wide keys.
struct WindowResampler {
    let attention: WindowAttention
    /// The stored 2D sin-cos table `pos_embed`, `[grid², E]`.
    let positionTable: [Float]
    let grid: Int
    /// Whether the resized table is rounded to bfloat16 before it is added to the keys (see
    /// `PositionPooling`).
    let roundPositionsToBFloat16: Bool

    /// Upper bound on one block's key-space queries, in floats (32 MB).
    static let blockBudget = 8 << 20

    /// `queries`: `[sets · grid², E]` from `WindowAttention.projectQueries` (set-major);
    /// `views`: each view's levels in key order. Returns the attention outputs after the
    /// out-projection, `[views · grid² · sets, E]` with rows ordered (view, window, set).
    func run(queries: [Float], sets: Int, views: [[PooledLevel]], context: ComputeContext) throws(LlavaError) -> [Float] {
        let e = attention.embedDim, windows = grid * grid
        let state = attention.callState(projectedQueries: queries, sets: sets, windows: windows)
        let rowsPerView = windows * sets
        var heads = [Float](repeating: 0, count: views.count * rowsPerView * e)
        let blockSize = max(1, min(windows, Self.blockBudget / max(1, sets * attention.heads * e)))
        var positionPooling: [String: PositionPooling] = [:]

        var w0 = 0
        while w0 < windows {
            try context.checkAbort("projector")
            let block = w0..<min(windows, w0 + blockSize)
            let keyQueries = attention.keySpaceQueries(state, windows: block)
            var pooledPositions: [String: [Float]] = [:]
            for (v, levels) in views.enumerated() {
                var keys: [[Float]] = [], values: [[Float]] = []
                for level in levels {
                    let layout = level.layout, n = layout.samplesPerWindow, rows = block.count * n
                    let key = "\(layout.height)x\(layout.width)"
                    if pooledPositions[key] == nil {
                        let pooling = positionPooling[key] ?? PositionPooling(
                            table: positionTable, grid: grid, embedDim: e, layout: layout,
                            roundToBFloat16: roundPositionsToBFloat16)
                        positionPooling[key] = pooling
                        pooledPositions[key] = pooling.pooled(cells: (block.lowerBound * n)..<(block.upperBound * n),
                                                              threads: context.threads)
                    }
                    var value = [Float](repeating: 0, count: rows * e)
                    value.withUnsafeMutableBufferPointer { out in
                        level.projection.values(level.prepared, layout: layout,
                                                cells: (block.lowerBound * n)..<(block.upperBound * n),
                                                into: out.baseAddress!, context: context)
                    }
                    var k = value
                    let position = pooledPositions[key]!
                    for i in 0..<(rows * e) { k[i] += position[i] }
                    if let embedding = level.embedding {
                        for r in 0..<rows { for j in 0..<e { k[r * e + j] += embedding[j] } }
                    }
                    keys.append(k)
                    values.append(value)
                }
                try context.checkAbort("projector")
                withSegments(keys, values, levels) { segments in
                    keyQueries.withUnsafeBufferPointer { q in
                        heads.withUnsafeMutableBufferPointer { out in
                            attention.attend(state, keyQueries: q.baseAddress!, count: block.count, segments: segments,
                                             into: out.baseAddress! + (v * rowsPerView + block.lowerBound * sets) * e)
                        }
                    }
                }
            }
            w0 = block.upperBound
        }
        var out = [Float](repeating: 0, count: heads.count)
        heads.withUnsafeMutableBufferPointer { h in
            out.withUnsafeMutableBufferPointer { o in
                attention.outputProjection(h.baseAddress!, rows: views.count * rowsPerView, into: o.baseAddress!,
                                           context: context)
            }
        }
        return out
    }

    /// Calls `body` with the levels' key and value buffers as attention segments.
    private func withSegments(_ keys: [[Float]], _ values: [[Float]], _ levels: [PooledLevel],
                              _ body: ([WindowAttention.KeySegment]) -> Void) {
        func nest(_ i: Int, _ acc: [WindowAttention.KeySegment]) {
            if i == keys.count { body(acc); return }
            keys[i].withUnsafeBufferPointer { k in
                values[i].withUnsafeBufferPointer { v in
                    nest(i + 1, acc + [WindowAttention.KeySegment(keys: k.baseAddress!, values: v.baseAddress!,
                                                                  perWindow: levels[i].layout.samplesPerWindow)])
                }
            }
        }
        nest(0, [])
    }
}
