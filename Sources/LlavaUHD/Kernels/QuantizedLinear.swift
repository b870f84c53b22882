import CLlavaUHD

extension MatMul {
    /// `out[m×N] = x[m×K] · Wᵀ` for a `QuantizedMatrix` `W` of `N` rows and `K` columns: the
    /// quantized counterpart of `linear(_:rows:weight:into:ldOut:context:)`.
    /// - Up to 4 rows of x (any number with `rowwise`) run the matrix-vector kernels straight from
    ///   the quantized bytes (the int8 VNNI kernels from the interleaved copy when `w` has one).
    /// - More rows (prefill) run an int8 matrix product when the CPU has one for the format
    ///   (`Int8ProductKernel`: AVX-512 VNNI, every block format; else AVX2, Q8_0, Q4_0, Q4_1,
    ///   Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q2_K-Q6_K; 32 weight rows unpacked at a time; `linear(_:rows:weights:...)`
    ///   prepares x once for several weights), else dequantize `W` tile by tile (4 MB of f32)
    ///   and multiply each tile with sgemm (`BLAS.load()` must have succeeded).
    /// Work is split over the threads by output rows; results do not depend on the thread count.
    /// `kernel` overrides the choice: an f32 kernel forces exact f32 arithmetic (f32 matrix-vector
    /// kernel, or dequantization + sgemm); a kernel this CPU cannot run, or that does not
    /// implement the format, falls back to `QuantKernel.preferred(for:)` (and, for prefill, to
    /// the CPU's int8 product).
    /// `rowwise`: the matrix-vector kernels for any number of rows (see
    /// `linear(_:rows:weight:into:ldOut:arithmetic:kernel:rowwise:context:)`), never the matrix product.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: QuantizedMatrix,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int? = nil,
                              context: ComputeContext, kernel: QuantKernel? = nil, rowwise: Bool = false) {
        let n = w.rows, k = w.columns
        let ldc = ldOut ?? n
        guard m > 0, n > 0 else { return }
        let chosen = quantizedKernel(for: w, kernel)
        if m <= quantizedMatvecMaxRows || rowwise {
            quantizedMatvec(x, rows: m, ldx: k, weight: w, into: out, ldOut: ldc, threads: context.threads, kernel: chosen)
            return
        }
        if let product = int8ProductKernel(for: w, rows: m, kernel: kernel, rowwise: rowwise) {
            int8Product(x, rows: m, weight: w, into: out, ldOut: ldc, threads: context.threads, kernel: product)
            return
        }
        forEachWeightTile(m: m, n: n, k: k, x: x, context: context) { n0, nt, xs, scratch in
            w.dequantize(rows: n0..<(n0 + nt), into: scratch, threads: 1)
            BLAS.sgemm(transB: true, m: m, n: nt, k: k, a: xs, lda: k, b: scratch, ldb: k, c: out + n0, ldc: ldc,
                       threads: 1)
        }
    }

    /// Bytes of prepared x (all its rows, a range of its columns) that every 32-row weight tile
    /// of `int8Product` reads in turn. Measured on the 2-vCPU EPYC (Zen 4: 1 MB L2 a core, 32 MB
    /// L3 shared) in the Vicuna-7B layer, 1000 rows, CPU time of the product functions against
    /// the former 2 MB passes of rows (load 7-10, one pair each): 1 MB ranges +40 %, 4 MB +5-14 %
    /// (each range re-reads and re-writes the outputs, a page apart per row), 8 MB -4 %, 64 MB
    /// -2 % (the interleaved rows restored and the tiles unpacked once, not once per pass). 32 MB
    /// keeps a prefill batch (up to 1024 rows of 4096-11008 columns, 6-17 MB prepared) in one
    /// range; an earlier one-core run saw x streamed past 4.7 MB fall to a third, not seen here.
    package static let int8ProductXBytes = 32 << 20

    /// The kernel `linear(_:rows:weight:into:ldOut:context:kernel:rowwise:)` uses for `w`:
    /// `kernel` when this CPU runs it and it implements the format, else the preferred one.
    static func quantizedKernel(for w: QuantizedMatrix, _ kernel: QuantKernel?) -> QuantKernel {
        if let kernel, kernel.isAvailable, kernel.supports(w.format) { return kernel }
        return QuantKernel.preferred(for: w.format)
    }

    /// True when `linear(_:rows:weight:into:ldOut:context:kernel:rowwise:)` runs `m` rows
    /// through an int8 matrix product (`int8Product`), which can take x prepared once for
    /// several weights (`PreparedInt8Rows`).
    package static func usesInt8Product(_ w: QuantizedMatrix, rows m: Int, kernel: QuantKernel?, rowwise: Bool) -> Bool {
        int8ProductKernel(for: w, rows: m, kernel: kernel, rowwise: rowwise) != nil
    }

    /// The int8 matrix product `linear(_:rows:weight:into:ldOut:context:kernel:rowwise:)` runs
    /// `m` rows of x through (`Int8ProductKernel.chosen`), nil for the matrix-vector kernels or
    /// dequantization + sgemm.
    package static func int8ProductKernel(for w: QuantizedMatrix, rows m: Int, kernel: QuantKernel?,
                                          rowwise: Bool) -> Int8ProductKernel? {
        guard m > quantizedMatvecMaxRows, !rowwise else { return nil }
        return Int8ProductKernel.chosen(for: w.format, kernel: kernel, features: Int8ProductKernel.hostFeatures)
    }

    /// The int8 matrix product `kernel` of `m` rows of x: x prepared once (`PreparedInt8Rows`,
    /// split over the threads, with the weight's blocking), then
    /// `int8Product(_:weight:into:ldOut:threads:xBytes:)`.
    static func int8Product(_ x: UnsafePointer<Float>, rows m: Int, weight w: QuantizedMatrix,
                            into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int, kernel: Int8ProductKernel) {
        let prepared = PreparedInt8Rows(x, rows: m, columns: w.columns, blocking: .init(for: w, kernel: kernel), kernel: kernel,
                                        threads: threads)
        int8Product(prepared, weight: w, into: out, ldOut: ldOut, threads: threads)
    }

    /// The int8 matrix product of prepared rows of x (`x.columns == w.columns`, `x.kernel` a
    /// product this CPU runs that implements the format, `x.blocking` the weight's
    /// `PreparedInt8Rows.Blocking(for:kernel:)`, else nothing is written) with `w`
    /// (`Int8ProductPlan`): tiles of 32 weight rows split over the threads (tasks handed out
    /// dynamically), in passes of rows only when one range of 256 columns for all rows exceeds
    /// `xBytes`.
    package static func int8Product(_ x: PreparedInt8Rows, weight w: QuantizedMatrix,
                                    into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int,
                                    xBytes: Int = int8ProductXBytes) {
        guard let plan = Int8ProductPlan(x, weight: w, into: out, ldOut: ldOut, threads: threads, xBytes: xBytes) else { return }
        for i0 in stride(from: 0, to: x.rows, by: plan.passRows) {
            parallelFor(plan.parts.count, threads: threads) { plan.run(part: $0, firstRow: i0) }
        }
    }

    /// The products of one prepared x with several weights (q/k/v, gate/up), each the bits of
    /// `int8Product(_:weight:into:ldOut:threads:xBytes:)`: when every product takes its rows in
    /// one pass, all their tasks share one parallel loop (one wait for the slowest thread instead
    /// of one per product); else one product after the other.
    package static func int8Products(_ x: PreparedInt8Rows, weights: [(weight: QuantizedMatrix, out: UnsafeMutablePointer<Float>)],
                                     threads: Int, xBytes: Int = int8ProductXBytes) {
        let plans = weights.compactMap {
            Int8ProductPlan(x, weight: $0.weight, into: $0.out, ldOut: $0.weight.rows, threads: threads, xBytes: xBytes)
        }
        guard plans.allSatisfy({ $0.passRows >= x.rows }) else {
            for (w, out) in weights { int8Product(x, weight: w, into: out, ldOut: w.rows, threads: threads, xBytes: xBytes) }
            return
        }
        let tasks = plans.indices.flatMap { p in plans[p].parts.indices.map { (p, $0) } }
        parallelFor(tasks.count, threads: threads) { t in plans[tasks[t].0].run(part: tasks[t].1, firstRow: 0) }
    }

    /// Weight rows of one tile of the int8 product (`luhd_quant_gemm_tile_columns` takes up to 32:
    /// two 16-lane halves, so that each 4 bytes of x broadcast feed two vpdpbusd and x is
    /// streamed once per 32 weight rows; every output is the same bits as with 16-row tiles;
    /// `luhd_quant_gemm_avx2_tile_columns` takes 32 too, as two passes of 16).
    static let int8ProductTileRows = 32

    /// Rows of x one matrix-vector kernel call takes (the C kernels' limit).
    static let quantizedMatvecMaxRows = 4

    /// `out[i·ldOut + r] = Σₖ W[r,k]·x[i·ldx + k]` for `m` rows of x, with a kernel the CPU runs
    /// and that implements the format (checked by the caller). x is prepared once for all rows
    /// (each row on its own, as for one row); more than 4 rows go through the kernel in groups of
    /// 4 over blocks of 64 weight rows, so a block is read from memory once and from cache for
    /// the next groups. Each output is computed as the kernel computes it for its row alone.
    static func quantizedMatvec(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, weight w: QuantizedMatrix,
                                into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int,
                                kernel: QuantKernel) {
        let prepared = PreparedMatvecRows(x, rows: m, ldx: ldx, columns: w.columns, format: w.format, kernel: kernel)
        let product = MatvecProduct(prepared, weight: w, into: out, ldOut: ldOut, threads: threads)
        parallelFor(product.parts.count, threads: threads) { product.run(part: $0) }
    }
}

/// x prepared for the matrix-vector kernels of one format and kernel (`luhd_quant_prepare`, every
/// row on its own, as for one row), shared by the products of weights of that format and width
/// that read the same x (q/k/v, gate/up).
final class PreparedMatvecRows {
    let x: UnsafePointer<Float>
    let rows: Int, ldx: Int, columns: Int
    let format: QuantFormat, kernel: QuantKernel
    /// Prepared bytes of one row of x.
    let rowBytes: Int
    let bytes: UnsafeMutableRawPointer

    init(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, columns: Int, format: QuantFormat, kernel: QuantKernel) {
        self.x = x
        rows = m
        self.ldx = ldx
        self.columns = columns
        self.format = format
        self.kernel = kernel
        let fmt = Int32(format.ggmlType), kid = kernel.rawValue
        rowBytes = luhd_quant_prepared_bytes(fmt, kid, columns, 1)
        bytes = UnsafeMutableRawPointer.allocate(byteCount: max(64, rowBytes * m), alignment: 64)
        let group = MatMul.quantizedMatvecMaxRows
        for g in stride(from: 0, to: m, by: group) {
            luhd_quant_prepare(fmt, kid, x + g * ldx, ldx, columns, Int32(min(group, m - g)), bytes + g * rowBytes)
        }
    }

    deinit { bytes.deallocate() }

    /// True when the products of `w` with `kernel` read x prepared this way.
    func serves(_ w: QuantizedMatrix, kernel: QuantKernel) -> Bool {
        w.format == format && kernel == self.kernel && w.columns == columns
    }
}

/// One matrix-vector product (`MatMul.quantizedMatvec`) cut into parts of whole weight rows (row
/// blocks of 4 on an interleaved copy), so that the parts of several products can share one
/// parallel loop. Every part writes its own outputs, computed as for one row of x alone.
struct MatvecProduct: @unchecked Sendable {
    let prepared: PreparedMatvecRows
    let weight: QuantizedMatrix
    let out: UnsafeMutablePointer<Float>
    let ldOut: Int
    /// Weight rows of each part.
    let parts: [Range<Int>]

    init(_ prepared: PreparedMatvecRows, weight w: QuantizedMatrix, into out: UnsafeMutablePointer<Float>, ldOut: Int,
         threads: Int) {
        self.prepared = prepared
        weight = w
        self.out = out
        self.ldOut = ldOut
        let split = threads > 1 ? threads * 8 : 1
        if prepared.kernel == .int8VNNI, w.interleavedLayout == .rowBlocks {
            parts = chunks(w.rows / 4, parts: split).map { (4 * $0.lowerBound)..<(4 * $0.upperBound) }
        } else {
            parts = chunks(w.rows, parts: split)
        }
    }

    /// Computes the rows of part `i`.
    func run(part i: Int) {
        let w = weight, p = prepared, m = p.rows, group = MatMul.quantizedMatvecMaxRows
        let fmt = Int32(w.format.ggmlType), kid = p.kernel.rawValue
        let block = m <= group ? w.rows : 64
        let prep = UnsafeRawPointer(p.bytes)
        var r0 = parts[i].lowerBound
        while r0 < parts[i].upperBound {
            let r1 = min(parts[i].upperBound, r0 + block)
            for g in stride(from: 0, to: m, by: group) {
                let rows = Int32(min(group, m - g))
                if let copy = w.interleavedData, let layout = w.interleavedLayout, p.kernel == layout.kernel {
                    // The load-time copy (bit-identical results): row-interleaved, whole row blocks
                    // of 4; scale-grouped, any rows.
                    switch layout {
                    case .rowBlocks:
                        luhd_quant_matvec_repacked(fmt, copy, w.rowBytes, r0, r1, w.columns, prep + g * p.rowBytes, rows,
                                                   out + g * ldOut, ldOut)
                    case .scaleGroups:
                        luhd_quant_matvec_grouped(fmt, copy, w.rowBytes, r0, r1, w.columns, prep + g * p.rowBytes, rows,
                                                  out + g * ldOut, ldOut)
                    }
                } else {
                    luhd_quant_matvec(fmt, kid, w.data, w.rowBytes, r0, r1, w.columns, p.x + g * p.ldx, p.ldx,
                                      prep + g * p.rowBytes, rows, out + g * ldOut, ldOut)
                }
            }
            r0 = r1
        }
    }
}

/// One int8 matrix product of prepared rows of x with a quantized matrix
/// (`MatMul.int8Product`), cut into parts of whole 32-row weight tiles. Each part walks the
/// columns in ranges whose prepared x, for all rows of a pass, fits the budget, and for each range
/// unpacks each of its tiles over that range once (into its thread's buffer) and multiplies it with
/// every row of the pass, adding to the outputs in the order of the blocks (so the results are the
/// bits one range over all columns gives, whatever the ranges, passes, parts and threads).
struct Int8ProductPlan: @unchecked Sendable {
    let x: PreparedInt8Rows
    let weight: QuantizedMatrix
    let out: SendablePointer<Float>
    let ldOut: Int
    /// Columns per range, rows per pass, tile buffer bytes.
    let span: Int, passRows: Int, tileBytes: Int
    /// Tiles (of `MatMul.int8ProductTileRows` weight rows) of each part.
    let parts: [Range<Int>]

    /// Nil when there is nothing to compute (no rows), x does not match the weight's columns
    /// or blocking (`PreparedInt8Rows.Blocking(for:kernel:)`), or x's product does not run on
    /// this CPU or does not implement the weight's format.
    init?(_ x: PreparedInt8Rows, weight w: QuantizedMatrix, into out: UnsafeMutablePointer<Float>, ldOut: Int, threads: Int,
          xBytes: Int) {
        let k = w.columns, m = x.rows
        guard m > 0, w.rows > 0, x.columns == k, x.kernel.isAvailable, x.kernel.supports(w.format),
              x.blocking == PreparedInt8Rows.Blocking(for: w, kernel: x.kernel) else { return nil }
        self.x = x
        weight = w
        self.out = SendablePointer(out)
        self.ldOut = ldOut
        // Whole groups of 256 columns (the unit of the interleaved copies) where k allows.
        let unit = k % 256 == 0 ? 256 : 32
        let unitBytes = max(1, unit * x.rowBytes / k)   // prepared bytes of one row over `unit` columns
        // Ranges of equal size (in units), as wide as the budget allows.
        let units = k / unit, maxUnits = max(1, xBytes / max(1, m * unitBytes))
        let ranges = (units + maxUnits - 1) / maxUnits
        span = min(k, (units + ranges - 1) / ranges * unit)
        passRows = maxUnits > 1 ? m : min(m, max(6, xBytes / unitBytes / 6 * 6))
        let tileRows = MatMul.int8ProductTileRows, tiles = (w.rows + tileRows - 1) / tileRows
        // One tile per task on several threads: a task's cost is its tile's alone (each tile is
        // unpacked once per range whatever the parts), so the finest split costs nothing and the
        // threads end each parallel loop within one tile of each other (a quarter of a thread's
        // share before, up to 30 ms of idle core for gate/up at 762 rows).
        parts = chunks(tiles, parts: threads > 1 ? tiles : 1)
        switch (x.kernel, x.blocking) {
        case (.vnni, .blocksOf32): tileBytes = luhd_quant_gemm_tile_bytes(span)
        case (.vnni, .superBlocksOf256): tileBytes = luhd_quant_gemm_k_tile_bytes(span)
        case (.avx2, .blocksOf32): tileBytes = luhd_quant_gemm_avx2_tile_bytes(span)
        case (.avx2, .superBlocksOf256): tileBytes = luhd_quant_gemm_k_avx2_tile_bytes(span)
        }
    }

    /// Computes the tiles of part `p` for the rows of the pass starting at `firstRow`.
    func run(part p: Int, firstRow i0: Int) {
        // With a load-time copy (the stored bytes may have been released), Q8_0 and Q4_0 tiles of
        // the VNNI product are unpacked from the row-interleaved copy itself; other rows (the
        // scale-grouped copies of the int8 AVX2 kernels included) are first put back in the stored
        // layout, over the range's columns, in a buffer after the tile's. Both live in the
        // thread's reused scratch (luhd_thread_scratch), not in fresh memory per task.
        let w = weight, fmt = Int32(w.format.ggmlType)
        let direct = w.interleavedLayout == .rowBlocks && x.kernel == .vnni && luhd_quant_gemm_repacked_supports(fmt) != 0
        let tileSpan = (max(64, tileBytes) + 63) / 64 * 64
        let rowsBytes = w.interleavedData != nil && !direct ? MatMul.int8ProductTileRows * w.rowBytes : 0
        MatMul.withScratch(floats: (tileSpan + rowsBytes + 3) / 4) { scratch in
            let tile = UnsafeMutableRawPointer(scratch)
            run(part: p, firstRow: i0, tile: tile, direct: direct, rowsBuffer: rowsBytes > 0 ? tile + tileSpan : nil)
        }
    }

    private func run(part p: Int, firstRow i0: Int, tile: UnsafeMutableRawPointer, direct: Bool,
                     rowsBuffer: UnsafeMutableRawPointer?) {
        let w = weight, k = w.columns, fmt = Int32(w.format.ggmlType), tileRows = MatMul.int8ProductTileRows
        let product = switch (x.kernel, x.blocking) {
        case (.vnni, .blocksOf32): luhd_quant_gemm_tile_columns
        case (.vnni, .superBlocksOf256): luhd_quant_gemm_k_tile_columns
        case (.avx2, .blocksOf32): luhd_quant_gemm_avx2_tile_columns
        case (.avx2, .superBlocksOf256): luhd_quant_gemm_k_avx2_tile_columns
        }
        let mp = min(passRows, x.rows - i0)
        let xb = UnsafeRawPointer(x.bytes + i0 * x.rowBytes), o = out.p + i0 * ldOut
        for k0 in stride(from: 0, to: k, by: span) {
            let k1 = min(k, k0 + span), accumulate: Int32 = k0 > 0 ? 1 : 0
            for t in parts[p] {
                let n0 = t * tileRows, nr = min(tileRows, w.rows - n0)
                if direct, let copy = w.interleavedData {
                    luhd_quant_gemm_tile_columns_repacked(fmt, copy, w.rowBytes, n0, Int32(nr), k, k0, k1, xb, mp, tile, o, ldOut,
                                                          accumulate)
                } else if let rowsBuffer {
                    w.restoreStored(rows: n0..<(n0 + nr), columns: k0..<k1, into: rowsBuffer)
                    product(fmt, rowsBuffer, w.rowBytes, 0, Int32(nr), k, k0, k1, xb, mp, tile, o + n0, ldOut, accumulate)
                } else {
                    product(fmt, w.data, w.rowBytes, n0, Int32(nr), k, k0, k1, xb, mp, tile, o, ldOut, accumulate)
                }
            }
        }
    }
}
