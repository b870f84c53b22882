import CLlavaUHD
@testable import LlavaUHD
import Testing
import TestSupport

/// One of the two AVX2 int8 prefill products (quant_gemm_avx2.c for the formats with blocks of
/// 32, quant_gemm_k_avx2.c for the K formats with super-blocks of 256) through its C tile entry
/// points, so that AVX2Int8ProductTests and AVX2KInt8ProductTests run the same checks of the
/// contract both share (quant_kernels.h): W·x~ up to f32 rounding, the same bits whatever the
/// tiling and the column ranges, nothing written outside the tile, NaN rows for non-finite x.
enum AVX2TileProduct {
    /// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL: x per block of 32 (`luhd_quant_gemm_avx2_*`).
    case blocksOf32
    /// Q4_K, Q5_K, Q6_K, Q3_K: x per super-block of 256 (`luhd_quant_gemm_k_avx2_*`).
    case superBlocksOf256

    /// How x is quantized for this product.
    var blocking: PreparedInt8Rows.Blocking { self == .blocksOf32 ? .blocksOf32 : .superBlocksOf256 }

    /// Values of x per quantization block.
    var block: Int { self == .blocksOf32 ? 32 : 256 }

    /// Bytes of the tile for `cols` columns.
    func tileBytes(_ cols: Int) -> Int {
        self == .blocksOf32 ? luhd_quant_gemm_avx2_tile_bytes(cols) : luhd_quant_gemm_k_avx2_tile_bytes(cols)
    }

    /// Rows [n0, n0 + nr) of W over columns [k0, k1) into y (the C `tile_columns` entry point).
    func tileColumns(_ format: Int32, _ w: UnsafeRawPointer, _ rowBytes: Int, _ n0: Int, _ nr: Int32, _ cols: Int,
                     _ k0: Int, _ k1: Int, _ x: UnsafeRawPointer, _ m: Int, _ tile: UnsafeMutableRawPointer,
                     _ y: UnsafeMutablePointer<Float>, _ ldy: Int, accumulate: Bool) {
        if self == .blocksOf32 {
            luhd_quant_gemm_avx2_tile_columns(format, w, rowBytes, n0, nr, cols, k0, k1, x, m, tile, y, ldy, accumulate ? 1 : 0)
        } else {
            luhd_quant_gemm_k_avx2_tile_columns(format, w, rowBytes, n0, nr, cols, k0, k1, x, m, tile, y, ldy, accumulate ? 1 : 0)
        }
    }

    /// `y = x · Wᵀ` (m × w.rows) through `MatMul.int8Product` with x prepared for this product.
    func product(_ x: [Float], rows m: Int, _ w: QuantizedMatrix, threads: Int) -> [Float] {
        let prepared = PreparedInt8Rows(x, rows: m, columns: w.columns, blocking: blocking, kernel: .avx2, threads: threads)
        var y = [Float](repeating: .nan, count: m * w.rows)
        y.withUnsafeMutableBufferPointer { yb in
            MatMul.int8Product(prepared, weight: w, into: yb.baseAddress!, ldOut: w.rows, threads: threads)
        }
        return y
    }

    /// The worst |y − W·x~| / Σ|w·x~| over the outputs (infinity for a NaN), x~ the int8 image of
    /// x per `block`, and the worst |y − W·x| / (Σ_blocks (dx/2)·Σ|w| + 1e-5·Σ|w·x~|): at most 1
    /// when y is W·x~ up to that rounding, since |x~ − x| ≤ dx/2 value by value.
    func errors(_ y: [Float], x: [Float], rows m: Int, _ w: QuantizedMatrix) -> (image: Double, exact: Double) {
        let rows = w.rows, cols = w.columns
        let wd = w.dequantized()
        var worst = 0.0, worstExact = 0.0
        for i in 0..<m {
            let xi = Array(x[(i * cols)..<((i + 1) * cols)])
            let image = int8Image(xi, block: block)
            for r in 0..<rows {
                var s = 0.0, sa = 0.0, exact = 0.0, qbound = 0.0
                for k in 0..<cols {
                    let wv = Double(wd[r * cols + k])
                    s += wv * Double(image.values[k])
                    sa += abs(wv * Double(image.values[k]))
                    exact += wv * Double(xi[k])
                    qbound += abs(wv) * Double(image.dx[k / block]) / 2
                }
                let v = Double(y[i * rows + r])
                let e = abs(v - s) / max(sa, 1e-30), q = abs(v - exact) / (qbound + 1e-5 * sa)
                worst = e.isNaN ? .infinity : max(worst, e)
                worstExact = q.isNaN ? .infinity : max(worstExact, q)
            }
        }
        return (worst, worstExact)
    }

    /// For each row count in `rowCounts`: the product on 1 and 2 threads has the same bits, is
    /// W·x~ within 1e-5·Σ|w·x~| and W·x within the x-quantization bound (`errors`). 45 weight
    /// rows: a 32-row tile and a 13-row one, a full and a partial panel of 8.
    func checkAgainstReference(_ format: QuantFormat, columns cols: Int, rowCounts: [Int]) throws {
        let rows = 45
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 7)
        #expect(PreparedInt8Rows.Blocking(for: w, kernel: .avx2) == blocking)
        var rng = TestRandom(seed: 13)
        for m in rowCounts {
            let x = rng.floats(m * cols, -2, 2)
            let y = product(x, rows: m, w, threads: 1)
            #expect(y.map(\.bitPattern) == product(x, rows: m, w, threads: 2).map(\.bitPattern),
                    "\(format) m=\(m): thread count changed the result")
            let (image, exact) = errors(y, x: x, rows: m, w)
            #expect(image <= 1e-5, "\(format) m=\(m): |y − W·x~|/Σ|w·x~| = \(image)")
            #expect(exact <= 1, "\(format) m=\(m): exceeds the x-quantization bound (\(exact))")
        }
    }

    /// y = x · Wᵀ (m rows of `ld` floats, each first −7) from tile calls of `tileRows` weight rows
    /// at every n0 of w, each over the column `ranges` in turn (the later ones accumulating).
    func tiled(_ w: QuantizedMatrix, _ prepared: PreparedInt8Rows, rows m: Int, tileRows: Int, ranges: [Range<Int>],
               ld: Int) -> [Float] {
        let tile = UnsafeMutableRawPointer.allocate(byteCount: tileBytes(w.columns), alignment: 64)
        defer { tile.deallocate() }
        var y = [Float](repeating: -7, count: m * ld)
        y.withUnsafeMutableBufferPointer { yb in
            for n0 in stride(from: 0, to: w.rows, by: tileRows) {
                for (j, r) in ranges.enumerated() {
                    tileColumns(Int32(w.format.ggmlType), w.data, w.rowBytes, n0, Int32(min(tileRows, w.rows - n0)), w.columns,
                                r.lowerBound, r.upperBound, prepared.bytes, m, tile, yb.baseAddress!, ld, accumulate: j > 0)
                }
            }
        }
        return y
    }

    /// Tiles of 1-32 rows at every n0 of a 37-row matrix, and the columns in `ranges` (the later
    /// ones accumulating), give the bits of one 32-row call over all columns; the output's extra
    /// columns (ldOut = rows + 3) stay untouched, and so does all of y for every range in
    /// `invalidRanges` (not whole blocks, or out of bounds).
    func checkTilingsAndColumnRanges(_ format: QuantFormat, columns cols: Int, ranges: [Range<Int>],
                                     invalidRanges: [Range<Int>]) throws {
        let rows = 37, m = 11, ld = rows + 3
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 17)
        var rng = TestRandom(seed: 19)
        let x = rng.floats(m * cols, -3, 3)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, blocking: blocking, kernel: .avx2, threads: 2)
        func run(tileRows: Int, ranges: [Range<Int>]) -> [Float] {
            tiled(w, prepared, rows: m, tileRows: tileRows, ranges: ranges, ld: ld)
        }
        let expected = run(tileRows: 32, ranges: [0..<cols])
        #expect(!(0..<m).contains { i in expected[(i * ld)..<(i * ld + rows)].contains { !$0.isFinite || $0 == -7 } },
                "\(format): an output not written")
        for i in 0..<m {
            #expect(expected[(i * ld + rows)..<(i * ld + ld)].allSatisfy { $0 == -7 }, "\(format): wrote past the tile")
        }
        for tileRows in [1, 3, 8, 9, 16, 17, 31, 32] {
            for split in [[0..<cols], ranges] {
                #expect(run(tileRows: tileRows, ranges: split).map(\.bitPattern) == expected.map(\.bitPattern),
                        "\(format): \(tileRows)-row tiles, \(split.count) column ranges")
            }
        }
        for r in invalidRanges {
            #expect(run(tileRows: 32, ranges: [r]).allSatisfy { $0 == -7 }, "\(format): the invalid column range \(r) wrote")
        }
    }

    /// A tile call over more columns than one pass of it reads (`GEMM_AVX2_RANGE_BYTES` of the
    /// tile, quant_gemm_avx2_common.h) runs its columns in ranges, the later ones adding to y:
    /// over `cols` columns the product is within the bounds of `errors`, and has the bits of the
    /// caller's own `splits` of the columns (which the call then divides at other places), in
    /// tiles of 32 and 13 rows.
    func checkRangesInsideOneCall(_ format: QuantFormat, columns cols: Int, splits: [[Range<Int>]]) throws {
        let rows = 45, m = 7
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 23)
        var rng = TestRandom(seed: 29)
        let x = rng.floats(m * cols, -2, 2)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, blocking: blocking, kernel: .avx2, threads: 1)
        func run(ranges: [Range<Int>]) -> [Float] { tiled(w, prepared, rows: m, tileRows: 32, ranges: ranges, ld: rows) }
        let y = run(ranges: [0..<cols])
        let (image, exact) = errors(y, x: x, rows: m, w)
        #expect(image <= 1e-5, "\(format): |y − W·x~|/Σ|w·x~| = \(image)")
        #expect(exact <= 1, "\(format): exceeds the x-quantization bound (\(exact))")
        for ranges in splits {
            #expect(run(ranges: ranges).map(\.bitPattern) == y.map(\.bitPattern), "\(format): columns split at \(ranges)")
        }
    }

    /// Rows of x with a non-finite value at each of `poisoned` (row, column) give NaN in every
    /// output of their row; the other rows keep the bits of their clean product.
    func checkNonFiniteRows(_ format: QuantFormat, columns cols: Int, poisoned: [(row: Int, column: Int, value: Float)]) throws {
        let rows = 20, m = 7
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 29)
        var rng = TestRandom(seed: 31)
        var x = rng.floats(m * cols)
        let clean = product(x, rows: m, w, threads: 1)
        for p in poisoned { x[p.row * cols + p.column] = p.value }
        let y = product(x, rows: m, w, threads: 1)
        for i in 0..<m {
            let row = y[(i * rows)..<((i + 1) * rows)]
            if poisoned.contains(where: { $0.row == i }) {
                let allNaN = row.allSatisfy { $0.isNaN }
                #expect(allNaN, "\(format): row \(i) with a non-finite value")
            } else {
                #expect(row.map(\.bitPattern) == clean[(i * rows)..<((i + 1) * rows)].map(\.bitPattern), "\(format): row \(i)")
            }
        }
    }
}
