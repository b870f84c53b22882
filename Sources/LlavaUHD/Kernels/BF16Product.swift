import CLlavaUHD

/// Matrix products against BF16 weights in bf16 arithmetic (AVX512_BF16 `vdpbf16ps`; see
/// Sources/CLlavaUHD/include/bf16_gemm.h): x rounded to bf16 once, bf16 pairs multiplied and
/// summed in float32, the weights read in place. Used by `MatMul.linear` for
/// `MatrixArithmetic.bfloat16`.
package enum BF16Product {
    /// True when this CPU has AVX512_BF16 (with AVX-512 F/BW/VL).
    package static let isAvailable = luhd_bf16_gemm_available() != 0

    /// `out[m×N] = bf16(x)[m×K] · Wᵀ` for a BF16 weight `[N, K]` with K even, split over `threads`
    /// by weight rows (results do not depend on the split). The caller checks `isAvailable`.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int) {
        precondition(w.dtype == .bf16 && w.shape.count == 2, "BF16Product needs a 2-D BF16 weight")
        let n = w.shape[0], k = w.shape[1]
        guard m > 0, n > 0 else { return }
        precondition(k % 2 == 0, "BF16Product needs an even row length")
        let xp = UnsafeMutableRawPointer.allocate(byteCount: luhd_bf16_gemm_x_bytes(k, m), alignment: 64)
        defer { xp.deallocate() }
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), xb = SendablePointer(xp.assumingMemoryBound(to: UInt8.self))
        let rowParts = chunks(m, parts: threads)
        parallelFor(rowParts.count, threads: threads) { p in
            let r = rowParts[p]
            luhd_bf16_gemm_pack_x(xs.p, k, k, m, r.lowerBound, r.upperBound, xb.p)
        }
        // Blocks of 12 weight rows (the micro-kernel's), a few per thread for balance.
        let blocks = (n + 11) / 12
        let parts = chunks(blocks, parts: threads > 1 ? threads * 4 : 1)
        let wp = w.data.assumingMemoryBound(to: UInt16.self)
        let o = SendablePointer(out)
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p]
            luhd_bf16_gemm(wp, k, r.lowerBound * 12, min(n, r.upperBound * 12), k, UnsafeRawPointer(xb.p), m, o.p, ldOut)
        }
    }
}
