import CLlavaUHD

/// Matrix products against weights that stay in the memory mapping, in whatever float dtype
/// the file stores: F32 used in place; F16/BF16 widened on the fly (in registers by the
/// matrix-vector kernels; BF16 by the own AVX-512 kernel of `BF16WeightProduct` where the CPU
/// has AVX-512; else tile by tile into a reused per-thread F32 buffer for OpenBLAS), never as
/// a whole copy of the tensor.
///
/// Each output element is computed by one thread with a fixed summation order (the
/// matrix-vector kernels; `BF16WeightProduct`'s fixed column blocks; `BLAS.sgemm`'s fixed
/// blocks), so results do not depend on
/// `context.threads`.
package enum MatMul {
    /// Inputs with at most this many rows use the matrix-vector kernels, which stream each
    /// weight row once (bound by memory bandwidth for a few rows, by their FMA rate beyond);
    /// larger inputs widen weight tiles to F32 for sgemm, whose better arithmetic rate pays for
    /// that extra memory traffic only from about this many rows on (`llavauhd-bench sgemm`
    /// measures both sides of the switch).
    package static let matvecMaxRows = 64

    /// `out[m×N] = x[m×K] · Wᵀ (+ bias)` for `W` stored `[N, K]` (the PyTorch `Linear` layout).
    /// `ldOut` is the row stride of `out` (default N); `bias` has N values.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
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
        } else if w.dtype == .bf16, Int(bitPattern: w.data) % 2 == 0, BF16WeightProduct.isAvailable {
            BF16WeightProduct.linear(x, rows: m, weight: w, into: out, ldOut: ldc, threads: context.threads)
        } else {
            forEachWeightTile(m: m, n: n, k: k, x: x, context: context) { n0, nt, xs, scratch in
                FloatConversion.widen(w, from: n0 * k, count: nt * k, into: scratch)
                BLAS.sgemm(transB: true, m: m, n: nt, k: k, a: xs, lda: k, b: scratch, ldb: k,
                           c: out + n0, ldc: ldc, threads: 1)
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
    package static func multiply(_ x: UnsafePointer<Float>, rows m: Int, by w: TensorView,
                                into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        precondition(w.shape.count == 2, "matrix '\(w.name)' must be 2-D")
        let k = w.shape[0], n = w.shape[1]
        guard m > 0, n > 0 else { return }
        if w.dtype == .f32, Int(bitPattern: w.data) % 4 == 0 {
            BLAS.sgemm(m: m, n: n, k: k, a: x, lda: k, b: w.data.assumingMemoryBound(to: Float.self),
                       ldb: n, c: out, ldc: n, threads: context.threads)
            return
        }
        // Column tiles [K, nt].
        forEachWeightTile(m: m, n: n, k: k, x: x, context: context) { n0, nt, xs, scratch in
            for row in 0..<k { FloatConversion.widen(w, from: row * n + n0, count: nt, into: scratch + row * nt) }
            BLAS.sgemm(m: m, n: nt, k: k, a: xs, lda: k, b: scratch, ldb: nt, c: out + n0, ldc: n, threads: 1)
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
        // Blocks of 8 rows; at least ~256 KB of weights per part so small products stay inline;
        // 8 parts per thread, handed out dynamically, so the threads finish within about a
        // sixteenth of a thread's share of each other.
        let blocks = (n + 7) / 8
        let bytesPerBlock = 8 * k * w.dtype.size
        let parts = min(threads * 8, max(1, blocks * bytesPerBlock / (256 << 10)))
        if parts <= 1 || threads <= 1 {
            run(0..<n)
            return
        }
        let ranges = chunks(blocks, parts: parts)
        parallelFor(ranges.count, threads: threads) { p in
            run((ranges[p].lowerBound * 8)..<min(n, ranges[p].upperBound * 8))
        }
    }

    /// The products of `m` rows against a stored weight with `n` outputs over `k`, tile by tile:
    /// the tiles are exactly the column blocks `BLAS.sgemm` would use for the whole product (512
    /// outputs, or all when N ≤ 768), and `body(n0, count, x, scratch)` converts one tile into
    /// `scratch` (count × k floats, the running thread's own) and multiplies it single-threaded.
    /// Tiles run on `context.threads` (in turn with the host's threaded OpenBLAS): the same
    /// blocks, so the same sums, as one sgemm on the converted matrix, whatever the thread count.
    static func forEachWeightTile(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, context: ComputeContext,
                                  _ body: (_ n0: Int, _ count: Int, _ x: UnsafePointer<Float>,
                                           _ scratch: UnsafeMutablePointer<Float>) -> Void) {
        let tile = BLAS.blockShape(m: m, n: n, k: k).cols
        let tiles = (n + tile - 1) / tile
        let threads = BLAS.callsRunInParallel ? context.threads : 1
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x))
        parallelFor(tiles, threads: threads) { t in
            let n0 = t * tile, count = min(tile, n - n0)
            withScratch(floats: count * k) { scratch in body(n0, count, UnsafePointer(xs.p), scratch) }
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
package func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
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
