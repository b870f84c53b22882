import CLlavaUHD

/// Float32 matrix products `y = x · Wᵀ` against a weight packed in panels of 32 output columns
/// (AVX-512; see Sources/CLlavaUHD/include/f32_gemm.h): 14 rows × 32 columns per micro-kernel
/// call, x packed per block (or read in place), y written directly. Every output is one chain
/// of fused multiply-adds over k in order, so results do not depend on how callers split rows
/// or panels over threads. Used where packing is cheap against the product and OpenBLAS's
/// per-call packing of both operands is not (the ViT attention: k = 64 for the scores, n = 64
/// for the mixing).
package enum F32Product {
    /// True when this CPU has AVX-512 F.
    package static let isAvailable = luhd_f32_gemm_available() != 0

    /// Output columns per packed panel.
    package static let panelWidth = 32

    /// Panels of a weight with `n` output columns.
    package static func panels(_ n: Int) -> Int { (n + panelWidth - 1) / panelWidth }

    /// Floats of a packed weight with `n` outputs over `k` (a multiple of 16: 64-byte blocks).
    package static func packedFloats(k: Int, n: Int) -> Int { luhd_f32_gemm_packed_floats(k, n) }

    /// Floats of the buffer `multiply` packs blocks of `rows` rows of x into.
    package static func packingFloats(rows: Int) -> Int { luhd_f32_gemm_x_floats(rows) }

    /// Packs `W[n, k]` (float32, row stride `ldw`) into `packed` (64-byte aligned,
    /// `packedFloats(k:n:)`).
    package static func pack(_ w: UnsafePointer<Float>, ldw: Int, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
        luhd_f32_gemm_pack_w(w, 0, ldw, k, n, 0, panels(n), packed)
    }

    /// Packs `W` given transposed, `B[k, n]` (row stride `ldb`): the right-hand matrix of `x · B`.
    package static func pack(transposed b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
        luhd_f32_gemm_pack_wt(b, ldb, k, n, 0, panels(n), packed)
    }

    /// `y[i, c] = Σⱼ x[i, j] · W[c, j]` for `rows` rows and all `n` columns, one thread.
    /// `packing`: `packingFloats(rows:)` floats (64-byte aligned) to pack x into, or nil to read x
    /// in place (a row stride that is not a multiple of 1 KB).
    package static func multiply(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, packed: UnsafePointer<Float>, k: Int, n: Int,
                         into y: UnsafeMutablePointer<Float>, ldy: Int, packing: UnsafeMutablePointer<Float>?) {
        luhd_f32_gemm(x, ldx, 0, rows, packed, k, n, 0, panels(n), y, ldy, packing)
    }
}

extension F32Product {
    /// Packs weights `[nᵢ, K]` (F32, F16 or BF16, aligned) stacked along the output into
    /// `packed` (64-byte aligned, `packedFloats(k: K, n: Σ nᵢ)`), widening on the way, with
    /// `threads` threads: the packed form of the stacked matrix when every nᵢ but the last is a
    /// multiple of 32. Returns false (nothing packed) for weights that do not qualify.
    package static func pack(_ weights: [TensorView], into packed: UnsafeMutablePointer<Float>, threads: Int) -> Bool {
        guard let k = weights.first?.shape.last else { return false }
        for (index, w) in weights.enumerated() {
            guard w.shape.count == 2, w.shape[1] == k, w.isAligned, [.f32, .f16, .bf16].contains(w.dtype),
                  index == weights.count - 1 || w.shape[0] % panelWidth == 0 else { return false }
        }
        var tasks: [(w: TensorView, panels: Range<Int>, out: UnsafeMutablePointer<Float>)] = []
        var out = packed
        for w in weights {
            let count = panels(w.shape[0])
            for r in chunks(count, parts: min(count, threads * 4)) { tasks.append((w, r, out)) }
            out += count * k * panelWidth
        }
        let list = tasks
        parallelFor(list.count, threads: threads) { t in
            let (w, r, out) = list[t]
            let code: Int32 = w.dtype == .f32 ? 0 : w.dtype == .f16 ? 1 : 2
            luhd_f32_gemm_pack_w(w.data, code, k, k, w.shape[0], r.lowerBound, r.upperBound, out)
        }
        return true
    }

    /// `y[m×n] = x[m×k] · Wᵀ` from the packed W, rows split over `threads` (in parts of whole
    /// 14-row blocks; results do not depend on the split), x packed per part into the running
    /// thread's scratch.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, packed: UnsafePointer<Float>, k: Int, n: Int,
                               into y: UnsafeMutablePointer<Float>, ldy: Int, threads: Int) {
        guard m > 0, n > 0 else { return }
        let blocks = (m + 13) / 14
        let parts = chunks(blocks, parts: min(blocks, threads > 1 ? threads * 2 : 1))
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), ys = SendablePointer(y)
        let ps = SendablePointer(UnsafeMutablePointer(mutating: packed))
        parallelFor(parts.count, threads: threads) { p in
            let r0 = parts[p].lowerBound * 14, r1 = min(m, parts[p].upperBound * 14)
            let bytes = packingFloats(rows: r1 - r0) * 4
            func run(_ raw: UnsafeMutableRawPointer) {
                multiply(xs.p + r0 * ldx, ldx: ldx, rows: r1 - r0, packed: ps.p, k: k, n: n, into: ys.p + r0 * ldy, ldy: ldy,
                         packing: raw.assumingMemoryBound(to: Float.self))
            }
            // The thread's scratch (64-byte aligned), or an aligned allocation if that cannot grow.
            if let raw = luhd_thread_scratch(bytes) {
                run(raw)
            } else {
                let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                defer { raw.deallocate() }
                run(raw)
            }
        }
    }
}
