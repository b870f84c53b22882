import CLlavaUHD

/// Exact (float32) matrix products against BF16 weights with the library's own AVX-512 kernel
/// (Sources/CLlavaUHD/include/bf16w_sgemm.h): each weight is widened to float32 once per
/// product while the kernel runs, and x is packed once, where the OpenBLAS route widens every
/// 512-row weight tile into a buffer that sgemm then packs again, together with all of x, per
/// tile. Every output is summed in a fixed order (a float32 fused multiply-add chain per block
/// of 256 columns, the blocks' sums added in order), so it depends only on its row of x and
/// its weight row (not on `m`, the thread count or the split).
/// Used by `MatMul.linear` for float32 arithmetic on BF16 weights.
package enum BF16WeightProduct {
    /// True when this CPU has AVX-512 F/BW/VL/DQ.
    package static let isAvailable = luhd_bf16w_sgemm_available() != 0

    /// `out[m×N] = x[m×K] · Wᵀ` in float32 for a BF16 weight `[N, K]`, split over `threads` by
    /// weight rows. x is packed into the calling thread's second scratch buffer (`m`·K floats
    /// rounded up to 32 rows), each task's partial sums into its thread's first one (about
    /// 4·m bytes per weight row of the task). The caller checks `isAvailable`.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int) {
        linear(x, rows: m, weights: [(w, out, ldOut)], threads: threads)
    }

    /// The products of x with several BF16 weights of the same K (q/k/v, gate/up): x packed
    /// once, and all products' tasks in one parallel loop (one wait for the slowest thread).
    /// Each output is exactly what the one-weight call computes.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int,
                              weights: [(weight: TensorView, out: UnsafeMutablePointer<Float>, ldOut: Int)], threads: Int) {
        guard m > 0, let k = weights.first?.weight.shape.last, k > 0 else { return }
        for (w, _, _) in weights {
            precondition(w.dtype == .bf16 && w.shape.count == 2 && w.shape[1] == k, "BF16WeightProduct needs 2-D BF16 weights of one width")
        }
        let xBytes = luhd_bf16w_sgemm_x_bytes(k, m)
        let xp: UnsafeMutablePointer<Float>, owned: Bool
        if let scratch = luhd_thread_scratch_slot(1, xBytes) {
            (xp, owned) = (scratch.assumingMemoryBound(to: Float.self), false)
        } else {
            (xp, owned) = (UnsafeMutableRawPointer.allocate(byteCount: xBytes, alignment: 64).assumingMemoryBound(to: Float.self), true)
        }
        defer { if owned { xp.deallocate() } }
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), xb = SendablePointer(xp)
        // Whole panels of 32 rows per part, so no two parts write the same cache line.
        let panelParts = chunks((m + 31) / 32, parts: threads)
        parallelFor(panelParts.count, threads: threads) { p in
            let r = panelParts[p]
            luhd_bf16w_sgemm_pack_x(xs.p, k, k, m, r.lowerBound * 32, min(m, r.upperBound * 32), xb.p)
        }
        // Per weight, blocks of 12 weight rows (the micro-kernel's), a few parts per thread for
        // balance; all parts of all weights in one loop.
        let tasks = weights.indices.flatMap { i in
            chunks((weights[i].weight.shape[0] + 11) / 12, parts: threads > 1 ? threads * 4 : 1).map { (i, $0) }
        }
        let products = weights.map { (w: $0.weight.data.assumingMemoryBound(to: UInt16.self), n: $0.weight.shape[0],
                                      out: SendablePointer($0.out), ldOut: $0.ldOut) }
        parallelFor(tasks.count, threads: threads) { t in
            let product = products[tasks[t].0], blocks = tasks[t].1
            let n0 = blocks.lowerBound * 12, n1 = min(product.n, blocks.upperBound * 12)
            let workFloats = (luhd_bf16w_sgemm_work_bytes(n1 - n0, m) + 3) / 4
            MatMul.withScratch(floats: workFloats) { work in
                luhd_bf16w_sgemm(product.w, k, n0, n1, k, UnsafePointer(xb.p), m, product.out.p, product.ldOut, work)
            }
        }
    }
}
