import CLlavaUHD

/// Matrix products against weights that stay in the memory mapping, in whatever float dtype
/// the file stores: F32 used in place; F16/BF16 widened on the fly (in registers by the
/// matrix-vector kernels, or tile by tile into a reused per-thread F32 buffer for OpenBLAS),
/// never as a whole copy of the tensor.
///
/// Each output element is computed by one thread with a fixed summation order (the
/// matrix-vector kernels; `BLAS.sgemm`'s fixed blocks), so results do not depend on
/// `context.threads`.
public enum MatMul {
    /// Inputs with at most this many rows use the matrix-vector kernels, which stream each
    /// weight row once (bound by memory bandwidth for a few rows, by their FMA rate beyond);
    /// larger inputs widen weight tiles to F32 for sgemm, whose better arithmetic rate pays for
    /// that extra memory traffic only from about this many rows on (`llavauhd-bench sgemm`
    /// measures both sides of the switch).
    public static let matvecMaxRows = 64

    /// `out[m×N] = x[m×K] · Wᵀ (+ bias)` for `W` stored `[N, K]` (the PyTorch `Linear` layout).
    /// `ldOut` is the row stride of `out` (default N); `bias` has N values.
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int? = nil,
                              bias: UnsafePointer<Float>? = nil, context: ComputeContext) {
        precondition(w.shape.count == 2, "linear weight '\(w.name)' must be 2-D")
        let n = w.shape[0], k = w.shape[1]
        let ldc = ldOut ?? n
        guard m > 0, n > 0 else { return }
        if m <= matvecMaxRows, DType.floatWeights.contains(w.dtype) {
            matvec(x, rows: m, weight: w, into: out, ldOut: ldc, threads: context.threads)
        } else if w.dtype == .f32, Int(bitPattern: w.data) % 4 == 0 {
            BLAS.sgemm(transB: true, m: m, n: n, k: k, a: x, lda: k,
                       b: w.data.assumingMemoryBound(to: Float.self), ldb: k, c: out, ldc: ldc,
                       threads: context.threads)
        } else {
            // Tiles of weight rows that are exactly the column blocks `BLAS.sgemm` would use for
            // the whole product (512 rows, or all when N ≤ 768), each widened and multiplied by
            // one thread in its own scratch (nb × K floats): the same blocks, so the same sums,
            // as one sgemm on the widened matrix, whatever the thread count.
            let tileRows = BLAS.blockShape(m: m, n: n, k: k).cols
            let tiles = (n + tileRows - 1) / tileRows
            let threads = BLAS.callsRunInParallel ? context.threads : 1
            let o = SendablePointer(out), xs = SendablePointer(UnsafeMutablePointer(mutating: x))
            parallelFor(tiles, threads: threads) { tile in
                let n0 = tile * tileRows, nt = min(tileRows, n - n0)
                withScratch(floats: nt * k) { scratch in
                    FloatConversion.widen(w, from: n0 * k, count: nt * k, into: scratch)
                    BLAS.sgemm(transB: true, m: m, n: nt, k: k, a: xs.p, lda: k, b: scratch, ldb: k,
                               c: o.p + n0, ldc: ldc, threads: 1)
                }
            }
        }
        if let bias {
            for i in 0..<m {
                let row = out + i * ldc
                for j in 0..<n { row[j] += bias[j] }
            }
        }
    }

    /// `out[m×N] = x[m×K] · W` for `W` stored `[K, N]` (a right-multiplied matrix such as the
    /// Hiwin `proj`).
    public static func multiply(_ x: UnsafePointer<Float>, rows m: Int, by w: TensorView,
                                into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        precondition(w.shape.count == 2, "matrix '\(w.name)' must be 2-D")
        let k = w.shape[0], n = w.shape[1]
        guard m > 0, n > 0 else { return }
        if w.dtype == .f32, Int(bitPattern: w.data) % 4 == 0 {
            BLAS.sgemm(m: m, n: n, k: k, a: x, lda: k, b: w.data.assumingMemoryBound(to: Float.self),
                       ldb: n, c: out, ldc: n, threads: context.threads)
            return
        }
        // Column tiles [K, nt] that are exactly `BLAS.sgemm`'s column blocks for the whole product,
        // each widened and multiplied by one thread in its own scratch: the same sums as one
        // sgemm on the widened matrix, whatever the thread count.
        let tileCols = BLAS.blockShape(m: m, n: n, k: k).cols
        let tiles = (n + tileCols - 1) / tileCols
        let threads = BLAS.callsRunInParallel ? context.threads : 1
        let o = SendablePointer(out), xs = SendablePointer(UnsafeMutablePointer(mutating: x))
        parallelFor(tiles, threads: threads) { tile in
            let n0 = tile * tileCols, nt = min(tileCols, n - n0)
            withScratch(floats: k * nt) { scratch in
                for row in 0..<k { FloatConversion.widen(w, from: row * n + n0, count: nt, into: scratch + row * nt) }
                BLAS.sgemm(m: m, n: nt, k: k, a: xs.p, lda: k, b: scratch, ldb: nt, c: o.p + n0, ldc: n, threads: 1)
            }
        }
    }

    /// Matrix-vector products for a few rows (`m ≤ matvecMaxRows`) of a float weight: each
    /// weight row is read once per call (in blocks of 4 or 8 rows, reused from cache for every
    /// group of 4 input rows) and widened in registers. Bound by memory bandwidth, so
    /// the weight rows are split across threads (in blocks of 8 rows).
    static func matvec(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
                       into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int) {
        let n = w.shape[0], k = w.shape[1]
        let table = VectorKernels.table
        let o = SendablePointer(out)
        let run: (Range<Int>) -> Void
        switch w.dtype {
        case .f32:
            let wp = w.data.assumingMemoryBound(to: Float.self)
            run = { r in table.matvec_f32(wp, k, r.lowerBound, r.upperBound, x, k, m, o.p, ldOut) }
        case .f16:
            let wp = w.data.assumingMemoryBound(to: UInt16.self)
            run = { r in table.matvec_f16(wp, k, r.lowerBound, r.upperBound, x, k, m, o.p, ldOut) }
        default:
            let wp = w.data.assumingMemoryBound(to: UInt16.self)
            run = { r in table.matvec_bf16(wp, k, r.lowerBound, r.upperBound, x, k, m, o.p, ldOut) }
        }
        // Blocks of 8 rows; at least ~256 KB of weights per part so small products stay inline.
        let blocks = (n + 7) / 8
        let bytesPerBlock = 8 * k * w.dtype.size
        let parts = min(threads * 4, max(1, blocks * bytesPerBlock / (256 << 10)))
        if parts <= 1 || threads <= 1 {
            run(0..<n)
            return
        }
        let ranges = chunks(blocks, parts: parts)
        parallelFor(ranges.count, threads: threads) { p in
            run((ranges[p].lowerBound * 8)..<min(n, ranges[p].upperBound * 8))
        }
    }

    /// Calls `body` with the calling thread's reusable scratch buffer of at least `floats`
    /// Floats (see luhd_thread_scratch), or a fresh allocation if that cannot grow.
    static func withScratch(floats: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
        if let raw = luhd_thread_scratch(floats * 4) {
            body(raw.assumingMemoryBound(to: Float.self))
        } else {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: floats)
            defer { p.deallocate() }
            body(p)
        }
    }
}

/// Dot product of two Float vectors with a fixed summation order (SIMD16 lanes, then the lanes
/// in order, then the tail).
@inline(__always)
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 32 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        s1 += ra.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
        i += 32
    }
    while i + 16 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    var s = (s0 + s1).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}
