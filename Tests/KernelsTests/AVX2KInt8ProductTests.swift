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
///   Q5_K, Q3_K and Q2_K, every remainder of the rows of x against the step of 6 (1-6 and 13 rows), 45
///   weight rows (a 32-row tile and a 13-row one of a full and a partial panel of 8), on 1 and 2
///   threads with the same bits;
/// - every quant at its largest value times x = ±127 (the bound of the int16 sums of
///   vpmaddubsw, quant_gemm_k_avx2.c's header; Q2_K's 4-bit scales and mins at 15 too) is still
///   within the bound: no saturation;
/// - every tiling (tiles of 1-32 rows at any n0) and split into column ranges gives the bits of
///   one call over all columns, outputs outside the tile are not written, and invalid column
///   ranges write nothing (the checks shared with the formats per 32: `AVX2TileProduct`);
/// - a call over more columns than it takes in one pass (it splits them itself) is within the
///   same bounds and has the bits of other splits;
/// - `MatMul.int8Product` with column ranges and passes of rows (a small budget of prepared
///   x), from the stored layout and from the interleaved copy, gives the bits of one call per
///   32 weight rows;
/// - the prepared x is its definition value for value;
/// - a non-finite super-block of x makes its row's outputs NaN and leaves the other rows alone.
@Suite struct AVX2KInt8ProductTests {
    static let formats: [QuantFormat] = [.q4_K, .q6_K, .q5_K, .q3_K, .q2_K]

    static let kernel = AVX2TileProduct.superBlocksOf256

    /// Within 1e-5·Σ|w·x~| of W·x~ and within the x-quantization bound of W·x, for every remainder
    /// of the rows of x against the step of 6, on 1 and 2 threads with the same bits.
    @Test(arguments: formats)
    func againstReference(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        #expect(Int8ProductKernel.avx2.supports(format))
        try Self.kernel.checkAgainstReference(format, columns: 768, rowCounts: [1, 2, 3, 4, 5, 6, 13])
    }

    /// Every quant at its largest value (Q4_K 15, Q5_K 31, Q6_K 63, Q3_K 7, Q2_K 3; the scales
    /// and the f16 factors as `testMatrix` makes them, except Q2_K's scale and min bytes, all 0xFF:
    /// sc = m = 15, the largest int32 sums S and M) times rows of x that quantize to +127 or −127
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
        case .q2_K: 0..<80       // the scale | min bytes, then the 2-bit quants
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
        let y = Self.kernel.product(x, rows: m, w, threads: 1)
        let (image, _) = Self.kernel.errors(y, x: x, rows: m, w)
        #expect(image <= 1e-5, "\(format): |y − W·x~|/Σ|w·x~| = \(image) with the largest operands")
    }

    /// Every tiling, and the columns in ranges of one super-block each, give the bits of one call;
    /// ranges that are not whole super-blocks or leave the matrix write nothing.
    @Test(arguments: formats)
    func tilingsAndColumnRanges(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        try Self.kernel.checkTilingsAndColumnRanges(format, columns: 768, ranges: [0..<256, 256..<512, 512..<768],
                                                     invalidRanges: [0..<128, 256..<300, 512..<1024, 256..<256])
    }

    /// A call over 11776 columns, more than one pass of the tile takes (45 super-blocks, 11520
    /// columns), splits them itself (2 ranges of 23 super-blocks) with the same bounds and bits.
    @Test(arguments: formats)
    func rangesInsideOneCall(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        try Self.kernel.checkRangesInsideOneCall(format, columns: 11776,
                                                 splits: [[0..<256, 256..<11776], [0..<3584, 3584..<11776],
                                                          [0..<768, 768..<5120, 5120..<11776]])
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
            for format in [QuantFormat.q4_K, .q6_K, .q2_K] {
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

    /// A row of x with an infinity, and one with a NaN, in one super-block give NaN in every output
    /// of their rows, for the formats with mins per 32 and per 16 and with offsets; the other rows
    /// are the products of their own values.
    @Test(arguments: [QuantFormat.q4_K, .q6_K, .q2_K])
    func nonFiniteSuperBlocks(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        try Self.kernel.checkNonFiniteRows(format, columns: 512, poisoned: [(2, 300, .infinity), (5, 7, .nan)])
    }
}
