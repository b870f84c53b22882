import CLlavaUHD
@testable import LlavaUHD
import Testing
import TestSupport

/// The AVX2 int8 product of prefill for the K formats (`Int8ProductKernel.avx2` with
/// `PreparedInt8Rows.Blocking.superBlocksOf256`, Sources/CLlavaUHD/quant_gemm_k_avx2.c), which
/// runs on every CPU with AVX2, FMA and F16C (so these tests run everywhere the library does):
/// - the product is W·x~ (x~ the int8 image of x per 256, `int8Image(_:block:)`) within
///   1e-5·Σ|w·x~| of an f64 reference from the exactly dequantized weights (a NaN fails), and
///   W·x within the x-quantization bound Σ (dx/2)·Σ|w| plus that rounding term, for Q4_K, Q6_K,
///   Q5_K and Q3_K, every remainder of the rows of x against the step of 6 (1-6 and 13 rows), 45
///   weight rows (a 32-row tile and a 13-row one of a full and a partial panel of 8), on 1 and 2
///   threads with the same bits;
/// - every quant at its largest value times x = ±127 (the bound of the int16 sums of
///   vpmaddubsw, quant_gemm_k_avx2.c's header) is still within the bound: no saturation;
/// - every tiling (tiles of 1-32 rows at any n0) and split into column ranges gives the bits of
///   one call over all columns, and outputs outside the tile are not written;
/// - a call over more columns than it takes in one pass (it splits them itself) is within the
///   same bounds and has the bits of other splits;
/// - `MatMul.int8Product` with column ranges and passes of rows (a small budget of prepared
///   x), from the stored layout and from the interleaved copy, gives the bits of one call per
///   32 weight rows;
/// - the prepared x is its definition value for value;
/// - a non-finite super-block of x makes its row's outputs NaN and leaves the other rows alone.
@Suite struct AVX2KInt8ProductTests {
    static let formats: [QuantFormat] = [.q4_K, .q6_K, .q5_K, .q3_K]

    /// `y = x · Wᵀ` through the AVX2 product (x prepared per 256 for it, `MatMul.int8Product`).
    static func product(_ x: [Float], rows m: Int, _ w: QuantizedMatrix, threads: Int) -> [Float] {
        let prepared = PreparedInt8Rows(x, rows: m, columns: w.columns, blocking: .superBlocksOf256, kernel: .avx2,
                                        threads: threads)
        var y = [Float](repeating: .nan, count: m * w.rows)
        y.withUnsafeMutableBufferPointer { yb in
            MatMul.int8Product(prepared, weight: w, into: yb.baseAddress!, ldOut: w.rows, threads: threads)
        }
        return y
    }

    /// The worst |y − W·x~| / Σ|w·x~| over the outputs (infinity for a NaN), and the worst
    /// |y − W·x| / (Σ_super-blocks (dx/2)·Σ|w| + 1e-5·Σ|w·x~|).
    static func errors(_ y: [Float], x: [Float], rows m: Int, _ w: QuantizedMatrix) -> (image: Double, exact: Double) {
        let rows = w.rows, cols = w.columns
        let wd = w.dequantized()
        var worst = 0.0, worstExact = 0.0
        for i in 0..<m {
            let xi = Array(x[(i * cols)..<((i + 1) * cols)])
            let image = int8Image(xi, block: 256)
            for r in 0..<rows {
                var s = 0.0, sa = 0.0, exact = 0.0, qbound = 0.0
                for k in 0..<cols {
                    let wv = Double(wd[r * cols + k])
                    s += wv * Double(image.values[k])
                    sa += abs(wv * Double(image.values[k]))
                    exact += wv * Double(xi[k])
                    qbound += abs(wv) * Double(image.dx[k / 256]) / 2
                }
                let v = Double(y[i * rows + r])
                let e = abs(v - s) / max(sa, 1e-30), q = abs(v - exact) / (qbound + 1e-5 * sa)
                worst = e.isNaN ? .infinity : max(worst, e)
                worstExact = q.isNaN ? .infinity : max(worstExact, q)
            }
        }
        return (worst, worstExact)
    }

    @Test(arguments: formats)
    func againstReference(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        #expect(Int8ProductKernel.avx2.supports(format))
        let rows = 45, cols = 768
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 7)
        #expect(PreparedInt8Rows.Blocking(for: w, kernel: .avx2) == .superBlocksOf256)
        var rng = TestRandom(seed: 13)
        for m in [1, 2, 3, 4, 5, 6, 13] {
            let x = rng.floats(m * cols, -2, 2)
            let y = Self.product(x, rows: m, w, threads: 1)
            #expect(y.map(\.bitPattern) == Self.product(x, rows: m, w, threads: 2).map(\.bitPattern),
                    "\(format) m=\(m): thread count changed the result")
            let (image, exact) = Self.errors(y, x: x, rows: m, w)
            #expect(image <= 1e-5, "\(format) m=\(m): |y − W·x~|/Σ|w·x~| = \(image)")
            #expect(exact <= 1, "\(format) m=\(m): exceeds the x-quantization bound (\(exact))")
        }
    }

    /// Every quant at its largest value (Q4_K 15, Q5_K 31, Q6_K 63, Q3_K 7; the scales and the
    /// f16 factors as `testMatrix` makes them) times rows of x that quantize to +127 or −127
    /// everywhere, and to alternating ±127: the int16 sums reach their stated maxima, and the
    /// product is still within 1e-5·Σ|w·x~| (a saturated vpmaddubsw sum would be off by far more).
    @Test(arguments: formats)
    func largestOperands(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 19, cols = 512, m = 7
        let base = try testMatrix(format, rows: rows, columns: cols, seed: 11)
        var bytes = [UInt8](UnsafeRawBufferPointer(start: base.data, count: base.byteCount))
        let quants: Range<Int> = switch format {
        case .q4_K: 16..<144     // the 128 nibble bytes
        case .q5_K: 16..<176     // the fifth bits, then the nibbles
        case .q6_K: 0..<192      // low nibbles, then the high bits
        default: 0..<96          // Q3_K: the high-bit mask, then the 2-bit quants
        }
        for b in 0..<(rows * cols / 256) { for j in quants { bytes[b * format.blockBytes + j] = 0xFF } }
        let owner = ByteOwner(bytes)
        let w = try QuantizedMatrix(name: "largest", format: format, rows: rows, columns: cols,
                                    data: UnsafeRawPointer(owner.pointer), owner: owner)
        var x = [Float](repeating: 0, count: m * cols)
        for i in 0..<m {
            for k in 0..<cols { x[i * cols + k] = i % 3 == 0 ? 1.5 : i % 3 == 1 ? -0.25 : (k % 2 == 0 ? 3 : -3) }
        }
        let y = Self.product(x, rows: m, w, threads: 1)
        let (image, _) = Self.errors(y, x: x, rows: m, w)
        #expect(image <= 1e-5, "\(format): |y − W·x~|/Σ|w·x~| = \(image) with the largest operands")
    }

    /// Tiles of 1-32 rows at every n0 of a 37-row matrix, and the columns in ranges of one
    /// super-block each (the later ones accumulating), give the bits of one 32-row call over all
    /// columns; the output's extra columns (ldOut = rows + 3) stay untouched.
    @Test(arguments: formats)
    func tilingsAndColumnRanges(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 37, cols = 768, m = 11, ld = rows + 3
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 17)
        var rng = TestRandom(seed: 19)
        let x = rng.floats(m * cols, -3, 3)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, blocking: .superBlocksOf256, kernel: .avx2, threads: 2)
        let fmt = Int32(format.ggmlType)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: luhd_quant_gemm_k_avx2_tile_bytes(cols), alignment: 64)
        defer { tile.deallocate() }
        func run(tileRows: Int, ranges: [Range<Int>]) -> [Float] {
            var y = [Float](repeating: -7, count: m * ld)
            y.withUnsafeMutableBufferPointer { yb in
                for n0 in stride(from: 0, to: rows, by: tileRows) {
                    for (j, r) in ranges.enumerated() {
                        luhd_quant_gemm_k_avx2_tile_columns(fmt, w.data, w.rowBytes, n0, Int32(min(tileRows, rows - n0)), cols,
                                                            r.lowerBound, r.upperBound, prepared.bytes, m, tile,
                                                            yb.baseAddress!, ld, j > 0 ? 1 : 0)
                    }
                }
            }
            return y
        }
        let expected = run(tileRows: 32, ranges: [0..<cols])
        #expect(!(0..<m).contains { i in expected[(i * ld)..<(i * ld + rows)].contains { !$0.isFinite || $0 == -7 } },
                "\(format): an output not written")
        for i in 0..<m {
            #expect(expected[(i * ld + rows)..<(i * ld + ld)].allSatisfy { $0 == -7 }, "\(format): wrote past the tile")
        }
        for tileRows in [1, 3, 8, 9, 16, 17, 31, 32] {
            for ranges in [[0..<cols], [0..<256, 256..<512, 512..<cols]] {
                #expect(run(tileRows: tileRows, ranges: ranges).map(\.bitPattern) == expected.map(\.bitPattern),
                        "\(format): \(tileRows)-row tiles, \(ranges.count) column ranges")
            }
        }
        // Column ranges that are not whole super-blocks, or out of bounds: nothing written.
        var y = [Float](repeating: -7, count: m * ld)
        y.withUnsafeMutableBufferPointer { yb in
            for (k0, k1) in [(0, 128), (256, 300), (512, 1024), (256, 256)] {
                luhd_quant_gemm_k_avx2_tile_columns(fmt, w.data, w.rowBytes, 0, 32, cols, k0, k1, prepared.bytes, m, tile,
                                                    yb.baseAddress!, ld, 0)
            }
        }
        #expect(y.allSatisfy { $0 == -7 }, "\(format): an invalid column range wrote")
    }

    /// A tile call over more columns than one pass of it reads (`GEMM_AVX2_RANGE_BYTES` of the
    /// tile, quant_gemm_avx2_common.h: 45 super-blocks, 11520 columns) runs its columns in ranges,
    /// the later ones adding to y: over 11776 columns (2 ranges of 23 super-blocks) the product
    /// is within 1e-5·Σ|w·x~| of the f64 reference and within the x-quantization bound, and has
    /// the bits of the caller's own splits of the columns (which the call then divides at other
    /// places), in tiles of 32 and 13 rows.
    @Test(arguments: formats)
    func rangesInsideOneCall(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 45, cols = 11776, m = 7
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 23)
        var rng = TestRandom(seed: 29)
        let x = rng.floats(m * cols, -2, 2)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, blocking: .superBlocksOf256, kernel: .avx2, threads: 1)
        let fmt = Int32(format.ggmlType)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: luhd_quant_gemm_k_avx2_tile_bytes(cols), alignment: 64)
        defer { tile.deallocate() }
        func run(ranges: [Range<Int>]) -> [Float] {
            var y = [Float](repeating: -7, count: m * rows)
            y.withUnsafeMutableBufferPointer { yb in
                for n0 in stride(from: 0, to: rows, by: 32) {
                    for (j, r) in ranges.enumerated() {
                        luhd_quant_gemm_k_avx2_tile_columns(fmt, w.data, w.rowBytes, n0, Int32(min(32, rows - n0)), cols,
                                                            r.lowerBound, r.upperBound, prepared.bytes, m, tile,
                                                            yb.baseAddress!, rows, j > 0 ? 1 : 0)
                    }
                }
            }
            return y
        }
        let y = run(ranges: [0..<cols])
        let (image, exact) = Self.errors(y, x: x, rows: m, w)
        #expect(image <= 1e-5, "\(format): |y − W·x~|/Σ|w·x~| = \(image)")
        #expect(exact <= 1, "\(format): exceeds the x-quantization bound (\(exact))")
        for ranges in [[0..<256, 256..<cols], [0..<3584, 3584..<cols], [0..<768, 768..<5120, 5120..<cols]] {
            #expect(run(ranges: ranges).map(\.bitPattern) == y.map(\.bitPattern), "\(format): columns split at \(ranges)")
        }
    }

    /// The int8 product with a small budget of prepared x (`MatMul.int8Product(_:weight:into:
    /// ldOut:threads:xBytes:)`, 768 KB), so that 700 rows of 1024 columns go in 2 ranges of
    /// columns and 2743 rows in single super-blocks with the rows in 2 passes; from the stored
    /// layout and from the interleaved copy (rows restored per tile), 2 threads. Every result
    /// must be the bits of one `luhd_quant_gemm_k_avx2_tile_columns` call per 32 weight rows
    /// over all columns and rows.
    @Test func columnRangesAndPasses() throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let cols = 1024, rows = 40
        for m in [700, 2743] {
            var rng = TestRandom(seed: UInt64(m))
            let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
            let prepared = PreparedInt8Rows(x, rows: m, columns: cols, blocking: .superBlocksOf256, kernel: .avx2, threads: 2)
            for format in [QuantFormat.q4_K, .q6_K] {
                let w = try testMatrix(format, rows: rows, columns: cols, seed: 9)
                let tile = UnsafeMutableRawPointer.allocate(byteCount: luhd_quant_gemm_k_avx2_tile_bytes(cols), alignment: 64)
                defer { tile.deallocate() }
                var expected = [Float](repeating: .nan, count: m * rows)
                expected.withUnsafeMutableBufferPointer { yb in
                    for n0 in stride(from: 0, to: rows, by: 32) {
                        luhd_quant_gemm_k_avx2_tile_columns(Int32(format.ggmlType), w.data, w.rowBytes, n0, Int32(min(32, rows - n0)),
                                                            cols, 0, cols, prepared.bytes, m, tile, yb.baseAddress!, rows, 0)
                    }
                }
                for (label, matrix) in [("stored layout", w), ("interleaved copy", w.interleaved(threads: 2))] {
                    var y = [Float](repeating: .nan, count: m * rows)
                    y.withUnsafeMutableBufferPointer { yb in
                        MatMul.int8Product(prepared, weight: matrix, into: yb.baseAddress!, ldOut: rows, threads: 2, xBytes: 3 << 18)
                    }
                    #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(format) m=\(m): \(label)")
                }
            }
        }
    }

    /// The prepared rows (`luhd_quant_gemm_k_avx2_prepare_x`) against their definition, super-block
    /// by super-block: the int8 values round(x/dx) (ties to even, clamped to ±127) stored signed,
    /// f32 dx = max|x|/127, the int16 sums per 16 and per 32; a super-block with an infinity or a
    /// NaN: zeros, dx = NaN, zero sums. Rows read at a stride longer than a row; the same bytes
    /// for 1 and 2 threads.
    @Test func preparationMatchesDefinition() throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let cols = 1280, m = 3, ns = cols / 256, ldx = cols + 24
        let packed = preparationInput(columns: cols, rows: m, block: 256, seed: 47)
        var x = [Float](repeating: 9, count: m * ldx)
        for i in 0..<m { x.replaceSubrange((i * ldx)..<(i * ldx + cols), with: packed[(i * cols)..<((i + 1) * cols)]) }
        let prepared = PreparedInt8Rows(x, rows: m, ldx: ldx, columns: cols, blocking: .superBlocksOf256, kernel: .avx2, threads: 1)
        #expect(prepared.rowBytes == luhd_quant_gemm_k_avx2_x_bytes(cols, 1))
        let used = cols + 52 * ns
        let bytes = { (p: PreparedInt8Rows) in
            (0..<m).flatMap { [UInt8](UnsafeRawBufferPointer(start: p.bytes + $0 * p.rowBytes, count: used)) }
        }
        #expect(bytes(PreparedInt8Rows(x, rows: m, ldx: ldx, columns: cols, blocking: .superBlocksOf256, kernel: .avx2,
                                       threads: 2)) == bytes(prepared))
        var nonFinite = 0
        for i in 0..<m {
            let row = UnsafeRawPointer(prepared.bytes + i * prepared.rowBytes)
            for s in 0..<ns {
                let (dx, values) = int8Block(packed[(i * cols + 256 * s)..<(i * cols + 256 * s + 256)])
                let stored = (0..<256).map { Int(row.load(fromByteOffset: 256 * s + $0, as: Int8.self)) }
                #expect(stored == values, "row \(i) super-block \(s): int8 values")
                let gotDx = row.loadUnaligned(fromByteOffset: cols + 4 * s, as: Float.self)
                let x16 = (0..<16).map { Int(row.loadUnaligned(fromByteOffset: cols + 4 * ns + 2 * (16 * s + $0), as: Int16.self)) }
                let x32 = (0..<8).map { Int(row.loadUnaligned(fromByteOffset: cols + 36 * ns + 2 * (8 * s + $0), as: Int16.self)) }
                #expect(x16 == (0..<16).map { values[(16 * $0)..<(16 * $0 + 16)].reduce(0, +) }, "row \(i) super-block \(s): sums per 16")
                #expect(x32 == (0..<8).map { values[(32 * $0)..<(32 * $0 + 32)].reduce(0, +) }, "row \(i) super-block \(s): sums per 32")
                if dx.isNaN {
                    nonFinite += 1
                    #expect(gotDx.isNaN, "row \(i) super-block \(s): non-finite super-block")
                } else {
                    #expect(gotDx.bitPattern == dx.bitPattern, "row \(i) super-block \(s): dx")
                }
            }
        }
        #expect(nonFinite == 2)
    }

    /// A row of x with an infinity in one super-block gives NaN in every output of that row, for
    /// the formats with mins and with offsets; the other rows are the products of their own values.
    @Test(arguments: [QuantFormat.q4_K, .q6_K])
    func nonFiniteSuperBlocks(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 20, cols = 512, m = 7
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 29)
        var rng = TestRandom(seed: 31)
        var x = rng.floats(m * cols)
        let clean = Self.product(x, rows: m, w, threads: 1)
        x[2 * cols + 300] = .infinity
        x[5 * cols + 7] = .nan
        let y = Self.product(x, rows: m, w, threads: 1)
        for i in 0..<m {
            let row = y[(i * rows)..<((i + 1) * rows)]
            if i == 2 || i == 5 {
                let allNaN = row.allSatisfy { $0.isNaN }
                #expect(allNaN, "\(format): row \(i) with a non-finite value")
            } else {
                #expect(row.map(\.bitPattern) == clean[(i * rows)..<((i + 1) * rows)].map(\.bitPattern), "\(format): row \(i)")
            }
        }
    }
}
