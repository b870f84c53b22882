/// Matrix products against weights that stay in the memory mapping, in whatever float dtype
/// the file stores (F32 used in place; F16/BF16 widened to F32 tile by tile, never as a whole
/// copy of the tensor).
public enum MatMul {
    /// Bytes of F32 scratch per converted weight tile.
    static let tileBytes = 4 << 20

    /// `out[m×N] = x[m×K] · Wᵀ` for `W` stored `[N, K]` (the PyTorch `Linear` layout).
    /// `ldOut` is the row stride of `out` (default N).
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int? = nil,
                              context: ComputeContext) {
        precondition(w.shape.count == 2, "linear weight '\(w.name)' must be 2-D")
        let n = w.shape[0], k = w.shape[1]
        let ldc = ldOut ?? n
        guard m > 0, n > 0 else { return }
        if m <= 4 {
            matvec(x, rows: m, weight: w, into: out, ldOut: ldc, context: context)
            return
        }
        if w.dtype == .f32, Int(bitPattern: w.data) % 4 == 0 {
            BLAS.sgemm(transB: true, m: m, n: n, k: k, a: x, lda: k,
                       b: w.data.assumingMemoryBound(to: Float.self), ldb: k, c: out, ldc: ldc)
            return
        }
        let tileRows = max(1, min(n, tileBytes / (4 * max(k, 1))))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * k)
        defer { scratch.deallocate() }
        var n0 = 0
        while n0 < n {
            let nt = min(tileRows, n - n0)
            convertRows(w, rows: n0..<(n0 + nt), rowLength: k, into: scratch, threads: context.threads)
            BLAS.sgemm(transB: true, m: m, n: nt, k: k, a: x, lda: k, b: scratch, ldb: k,
                       c: out + n0, ldc: ldc)
            n0 += nt
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
                       ldb: n, c: out, ldc: n)
            return
        }
        let tileRows = max(1, min(k, tileBytes / (4 * max(n, 1))))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * n)
        defer { scratch.deallocate() }
        var k0 = 0
        while k0 < k {
            let kt = min(tileRows, k - k0)
            convertRows(w, rows: k0..<(k0 + kt), rowLength: n, into: scratch, threads: context.threads)
            BLAS.sgemm(m: m, n: n, k: kt, a: x + k0, lda: k, b: scratch, ldb: n,
                       beta: k0 == 0 ? 0 : 1, c: out, ldc: n)
            k0 += kt
        }
    }

    /// Matrix-vector products for a few rows: reads each weight row once, widening on the fly.
    /// Bound by memory bandwidth, so the rows are split across threads.
    static func matvec(_ x: UnsafePointer<Float>, rows m: Int, weight w: TensorView,
                       into out: UnsafeMutablePointer<Float>, ldOut: Int, context: ComputeContext) {
        let n = w.shape[0], k = w.shape[1]
        let parts = chunks(n, parts: context.threads * 8)
        let o = SendablePointer(out)
        parallelFor(parts.count, threads: context.threads) { p in
            let rowBuf = UnsafeMutablePointer<Float>.allocate(capacity: k)
            defer { rowBuf.deallocate() }
            for r in parts[p] {
                w.convert(from: r * k, count: k, into: rowBuf)
                for i in 0..<m { o.p[i * ldOut + r] = dot(x + i * k, rowBuf, k) }
            }
        }
    }

    /// Widens rows `rows` of a 2-D tensor (row length `rowLength`) into contiguous F32.
    static func convertRows(_ w: TensorView, rows: Range<Int>, rowLength: Int,
                            into out: UnsafeMutablePointer<Float>, threads: Int) {
        let parts = chunks(rows.count, parts: threads)
        let o = SendablePointer(out)
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p]
            w.convert(from: (rows.lowerBound + r.lowerBound) * rowLength, count: r.count * rowLength,
                      into: o.p + r.lowerBound * rowLength)
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
