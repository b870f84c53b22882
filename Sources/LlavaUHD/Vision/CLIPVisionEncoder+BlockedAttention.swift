/// The ViT's attention for one (view, head) in blocks of query rows, with `F32Product` (CPUs
/// with AVX-512): the keys and values are packed once, then each block of
/// `attentionRowBlock` query rows gets its scores (rows × tokens, kept in L2), softmax, and its
/// mixing with the values, so the whole tokens × tokens score matrix never goes to memory.
/// Same arithmetic as the OpenBLAS path: scores = (q·k summed in float32) × 1/√d, softmax per
/// row, then the probabilities times the values summed in float32 (each sum in order of k).
extension CLIPVisionEncoder {
    /// Query rows per block (a block's scores of a 577-token view take 250 KB).
    static let attentionRowBlock = 112

    /// Floats of one task's working memory for views of up to `tokens` tokens, heads of `headDim`.
    static func attentionWorkspaceFloats(tokens n: Int, headDim d: Int) -> Int {
        let rows = min(n, attentionRowBlock)
        return roundedTo16(F32Product.packedFloats(k: d, n: n)) + roundedTo16(F32Product.packedFloats(k: n, n: d))
            + roundedTo16(rows * scoreStride(n)) + F32Product.packingFloats(rows: rows)
    }

    /// Row stride of a block's scores: `n`, moved off a multiple of 512 bytes (whose rows would
    /// crowd a few L1 sets when the mixing reads 14 of them in place).
    static func scoreStride(_ n: Int) -> Int { n % 128 == 0 ? n + 16 : n }

    static func roundedTo16(_ count: Int) -> Int { (count + 15) / 16 * 16 }

    /// `out[i, 0..<d] = softmax(scale · qᵢ · Kᵀ) · V` for the `n` tokens of one head: q, k, v
    /// rows `ld` floats apart, out rows `ldOut` apart; `workspace`: 64-byte aligned,
    /// `attentionWorkspaceFloats(tokens: ≥ n, headDim: d)` floats. One thread.
    static func blockedAttention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                                 tokens n: Int, headDim d: Int, scale: Float,
                                 into out: UnsafeMutablePointer<Float>, ldOut: Int,
                                 workspace: UnsafeMutablePointer<Float>) {
        let packedKeys = workspace
        let packedValues = packedKeys + roundedTo16(F32Product.packedFloats(k: d, n: n))
        let scores = packedValues + roundedTo16(F32Product.packedFloats(k: n, n: d))
        let blockRows = min(n, attentionRowBlock), ls = scoreStride(n)
        let packing = scores + roundedTo16(blockRows * ls)
        F32Product.pack(k, ldw: ld, k: d, n: n, into: packedKeys)
        F32Product.pack(transposed: v, ldb: ld, k: n, n: d, into: packedValues)
        let softmax = VectorKernels.table.softmax
        var r0 = 0
        while r0 < n {
            let rows = min(blockRows, n - r0)
            F32Product.multiply(q + r0 * ld, ldx: ld, rows: rows, packed: packedKeys, k: d, n: n, into: scores, ldy: ls,
                                packing: packing)
            for r in 0..<rows {
                let row = scores + r * ls
                for j in 0..<n { row[j] *= scale }
                softmax(row, n)
            }
            F32Product.multiply(scores, ldx: ls, rows: rows, packed: packedValues, k: n, n: d, into: out + r0 * ldOut,
                                ldy: ldOut, packing: nil)
            r0 += rows
        }
    }
}
