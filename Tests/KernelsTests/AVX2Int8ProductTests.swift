import CLlavaUHD
@testable import LlavaUHD
import Testing
import TestSupport

/// The AVX2 int8 matrix product of prefill (`Int8ProductKernel.avx2`,
/// Sources/CLlavaUHD/quant_gemm_avx2.c), which runs on every CPU with AVX2, FMA and F16C (AVX-512
/// machines included, so these tests run everywhere the library does), and the choice between
/// the int8 products:
/// - the product is W·x~ (x~ the int8 image of x per block of 32, `int8Image`) within
///   1e-5·Σ|w·x~| of an f64 reference from the exactly dequantized weights (a NaN fails), for
///   every format it implements, row counts with every tail (1, 4, 5, 7, 13 rows of x against
///   steps of 6; 45 weight rows:
///   a 32-row tile and a 13-row one of a full and a partial panel of 8), on 1 and 2 threads with
///   the same bits;
/// - every tiling (tiles of 1-32 rows at any n0) and split into column ranges gives the bits of
///   one call over all columns, and outputs outside the tile are not written;
/// - a call over more columns than it takes in one pass (it splits them itself) is within the
///   same bound and has the bits of other splits;
/// - the prepared x is its definition value for value;
/// - a non-finite block of x makes its row's outputs NaN and leaves the other rows alone.
@Suite struct AVX2Int8ProductTests {
    static let formats: [QuantFormat] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl]

    /// `y = x · Wᵀ` through the AVX2 product (x prepared for it, `MatMul.int8Product`).
    static func product(_ x: [Float], rows m: Int, _ w: QuantizedMatrix, threads: Int) -> [Float] {
        let prepared = PreparedInt8Rows(x, rows: m, columns: w.columns, kernel: .avx2, threads: threads)
        var y = [Float](repeating: .nan, count: m * w.rows)
        y.withUnsafeMutableBufferPointer { yb in
            MatMul.int8Product(prepared, weight: w, into: yb.baseAddress!, ldOut: w.rows, threads: threads)
        }
        return y
    }

    @Test(arguments: formats)
    func againstReference(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        #expect(Int8ProductKernel.avx2.supports(format))
        let rows = 45, cols = 352
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 7)
        let wd = w.dequantized()
        var rng = TestRandom(seed: 13)
        for m in [1, 4, 5, 7, 13] {
            let x = rng.floats(m * cols, -2, 2)
            let y = Self.product(x, rows: m, w, threads: 1)
            #expect(y.map(\.bitPattern) == Self.product(x, rows: m, w, threads: 2).map(\.bitPattern),
                    "\(format) m=\(m): thread count changed the result")
            var worst = 0.0
            for i in 0..<m {
                let xt = int8Image(Array(x[(i * cols)..<((i + 1) * cols)])).values
                for r in 0..<rows {
                    var s = 0.0, sa = 0.0
                    for k in 0..<cols {
                        s += Double(wd[r * cols + k]) * Double(xt[k])
                        sa += abs(Double(wd[r * cols + k]) * Double(xt[k]))
                    }
                    let e = abs(Double(y[i * rows + r]) - s) / sa
                    worst = e.isNaN ? .infinity : max(worst, e)
                }
            }
            #expect(worst <= 1e-5, "\(format) m=\(m): |y − W·x~|/Σ|w·x~| = \(worst)")
        }
    }

    /// Tiles of 1-32 rows at every n0 of a 37-row matrix, and the columns in ranges of 32, 96
    /// and the rest (the later ones accumulating), give the bits of one 32-row call over all
    /// columns; the output's extra columns (ldOut = rows + 3) stay untouched.
    @Test(arguments: formats)
    func tilingsAndColumnRanges(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 37, cols = 320, m = 11, ld = rows + 3
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 17)
        var rng = TestRandom(seed: 19)
        let x = rng.floats(m * cols, -3, 3)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, kernel: .avx2, threads: 2)
        let fmt = Int32(format.ggmlType)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: luhd_quant_gemm_avx2_tile_bytes(cols), alignment: 64)
        defer { tile.deallocate() }
        func run(tileRows: Int, ranges: [Range<Int>]) -> [Float] {
            var y = [Float](repeating: -7, count: m * ld)
            y.withUnsafeMutableBufferPointer { yb in
                for n0 in stride(from: 0, to: rows, by: tileRows) {
                    for (j, r) in ranges.enumerated() {
                        luhd_quant_gemm_avx2_tile_columns(fmt, w.data, w.rowBytes, n0, Int32(min(tileRows, rows - n0)), cols,
                                                          r.lowerBound, r.upperBound, prepared.bytes, m, tile, yb.baseAddress!,
                                                          ld, j > 0 ? 1 : 0)
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
            for ranges in [[0..<cols], [0..<32, 32..<128, 128..<cols]] {
                #expect(run(tileRows: tileRows, ranges: ranges).map(\.bitPattern) == expected.map(\.bitPattern),
                        "\(format): \(tileRows)-row tiles, \(ranges.count) column ranges")
            }
        }
    }

    /// A tile call over more columns than one pass of it reads (`GEMM_AVX2_RANGE_BYTES` of the
    /// tile, quant_gemm_avx2_common.h: 227 blocks, 7264 columns) runs its columns in ranges, the
    /// later ones adding to y: over 9248 columns (ranges of 145 and 144 blocks) the product is within
    /// 1e-5·Σ|w·x~| of the f64 reference, and has the bits of the caller's own splits of the
    /// columns (which the call then divides at other places), in tiles of 32 and 13 rows.
    @Test(arguments: formats)
    func rangesInsideOneCall(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 45, cols = 9248, m = 7
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 23)
        var rng = TestRandom(seed: 29)
        let x = rng.floats(m * cols, -2, 2)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, kernel: .avx2, threads: 1)
        let fmt = Int32(format.ggmlType)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: luhd_quant_gemm_avx2_tile_bytes(cols), alignment: 64)
        defer { tile.deallocate() }
        func run(ranges: [Range<Int>]) -> [Float] {
            var y = [Float](repeating: -7, count: m * rows)
            y.withUnsafeMutableBufferPointer { yb in
                for n0 in stride(from: 0, to: rows, by: 32) {
                    for (j, r) in ranges.enumerated() {
                        luhd_quant_gemm_avx2_tile_columns(fmt, w.data, w.rowBytes, n0, Int32(min(32, rows - n0)), cols,
                                                          r.lowerBound, r.upperBound, prepared.bytes, m, tile, yb.baseAddress!,
                                                          rows, j > 0 ? 1 : 0)
                    }
                }
            }
            return y
        }
        let y = run(ranges: [0..<cols])
        let wd = w.dequantized()
        var worst = 0.0
        for i in 0..<m {
            let xt = int8Image(Array(x[(i * cols)..<((i + 1) * cols)])).values
            for r in 0..<rows {
                var s = 0.0, sa = 0.0
                for k in 0..<cols {
                    s += Double(wd[r * cols + k]) * Double(xt[k])
                    sa += abs(Double(wd[r * cols + k]) * Double(xt[k]))
                }
                let e = abs(Double(y[i * rows + r]) - s) / sa
                worst = e.isNaN ? .infinity : max(worst, e)
            }
        }
        #expect(worst <= 1e-5, "\(format): |y − W·x~|/Σ|w·x~| = \(worst)")
        for ranges in [[0..<32, 32..<cols], [0..<2080, 2080..<cols], [0..<1024, 1024..<6144, 6144..<cols]] {
            #expect(run(ranges: ranges).map(\.bitPattern) == y.map(\.bitPattern), "\(format): columns split at \(ranges)")
        }
    }

    /// The prepared rows (`luhd_quant_gemm_avx2_prepare_x`) against their definition, block by
    /// block: the int8 values round(x/dx) (ties to even, clamped to ±127) stored signed, f32 dx =
    /// max|x|/127, sx = dx·Σq and the int32 Σq; a block with an infinity or a NaN: zeros, dx = sx
    /// = NaN, Σq = 0. Rows read at a stride longer than a row; the same bytes for 1 and 2
    /// threads.
    @Test func preparationMatchesDefinition() throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let cols = 1184, m = 3, nb = cols / 32, ldx = cols + 24
        let packed = preparationInput(columns: cols, rows: m, block: 32, seed: 43)
        var x = [Float](repeating: 9, count: m * ldx)
        for i in 0..<m { x.replaceSubrange((i * ldx)..<(i * ldx + cols), with: packed[(i * cols)..<((i + 1) * cols)]) }
        let prepared = PreparedInt8Rows(x, rows: m, ldx: ldx, columns: cols, kernel: .avx2, threads: 1)
        #expect(prepared.rowBytes == luhd_quant_gemm_avx2_x_bytes(cols, 1) && prepared.blocking == .blocksOf32)
        let used = cols + 12 * nb
        let bytes = { (p: PreparedInt8Rows) in
            (0..<m).flatMap { [UInt8](UnsafeRawBufferPointer(start: p.bytes + $0 * p.rowBytes, count: used)) }
        }
        #expect(bytes(PreparedInt8Rows(x, rows: m, ldx: ldx, columns: cols, kernel: .avx2, threads: 2)) == bytes(prepared))
        var nonFinite = 0
        for i in 0..<m {
            let row = UnsafeRawPointer(prepared.bytes + i * prepared.rowBytes)
            for b in 0..<nb {
                let (dx, values) = int8Block(packed[(i * cols + 32 * b)..<(i * cols + 32 * b + 32)])
                let stored = (0..<32).map { Int(row.load(fromByteOffset: 32 * b + $0, as: Int8.self)) }
                #expect(stored == values, "row \(i) block \(b): int8 values")
                let sum = values.reduce(0, +)
                let gotDx = row.loadUnaligned(fromByteOffset: cols + 4 * b, as: Float.self)
                let gotSx = row.loadUnaligned(fromByteOffset: cols + 4 * (nb + b), as: Float.self)
                let gotSum = row.loadUnaligned(fromByteOffset: cols + 4 * (2 * nb + b), as: Int32.self)
                if dx.isNaN {
                    nonFinite += 1
                    #expect(gotDx.isNaN && gotSx.isNaN && gotSum == 0, "row \(i) block \(b): non-finite block")
                } else {
                    #expect(gotDx.bitPattern == dx.bitPattern, "row \(i) block \(b): dx")
                    #expect(gotSx.bitPattern == (dx * Float(sum)).bitPattern, "row \(i) block \(b): sx")
                    #expect(Int(gotSum) == sum, "row \(i) block \(b): Σq")
                }
            }
        }
        #expect(nonFinite == 2)
    }

    /// A row of x with an infinity in one block gives NaN in every output of that row, for every
    /// weight kind (signed, unsigned with an integer offset, with f32 offsets); the other rows
    /// are the products of their own values.
    @Test(arguments: [QuantFormat.q8_0, .q4_0, .q4_1, .q5_0])
    func nonFiniteBlocks(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let rows = 20, cols = 128, m = 7
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 29)
        var rng = TestRandom(seed: 31)
        var x = rng.floats(m * cols)
        let clean = Self.product(x, rows: m, w, threads: 1)
        x[2 * cols + 70] = .infinity
        let y = Self.product(x, rows: m, w, threads: 1)
        for i in 0..<m {
            let row = y[(i * rows)..<((i + 1) * rows)]
            if i == 2 {
                let allNaN = row.allSatisfy { $0.isNaN }
                #expect(allNaN, "\(format): row with an infinity")
            } else {
                #expect(row.map(\.bitPattern) == clean[(i * rows)..<((i + 1) * rows)].map(\.bitPattern), "\(format): row \(i)")
            }
        }
    }

    /// Which int8 product a feature set picks: VNNI where the CPU has AVX-512 VNNI (every block
    /// format), else AVX2 (its formats per 32 and the K formats Q3_K-Q6_K per 256; Q2_K, IQ4_XS
    /// and dense ones get none), none without AVX2+FMA+F16C; an f32 kernel the CPU runs forces
    /// none (exact f32), one it cannot run is ignored. Both products take x per 256 for Q3_K-Q6_K
    /// and per 32 otherwise. `MatMul.usesInt8Product` follows the host's choice.
    @Test func dispatchByFeatures() throws {
        var avx2 = CPUProfile.Features()
        avx2.avx2 = true
        avx2.fma = true
        avx2.f16c = true
        var zen4 = avx2
        zen4.avx512 = true
        zen4.avx512VNNI = true
        zen4.avx512BF16 = true
        var avxVNNI = avx2
        avxVNNI.avxVNNI = true
        var noF16C = avx2
        noF16C.f16c = false
        for format in QuantFormat.allCases where format.isBlockQuantized {
            let kFormat = AVX2KInt8ProductTests.formats.contains(format)
            let avx2Formats = Self.formats.contains(format) || kFormat
            let w = try testMatrix(format, rows: 2, columns: 256, seed: 3)
            for kernel in Int8ProductKernel.allCases {
                #expect(PreparedInt8Rows.Blocking(for: w, kernel: kernel) == (kFormat ? .superBlocksOf256 : .blocksOf32),
                        "\(format) \(kernel): blocking")
            }
            #expect(Int8ProductKernel.chosen(for: format, kernel: nil, features: zen4) == .vnni, "\(format) VNNI CPU")
            #expect(Int8ProductKernel.chosen(for: format, kernel: nil, features: avx2) == (avx2Formats ? .avx2 : nil),
                    "\(format) AVX2 CPU")
            #expect(Int8ProductKernel.chosen(for: format, kernel: nil, features: avxVNNI) == (avx2Formats ? .avx2 : nil),
                    "\(format) AVX-VNNI CPU")
            #expect(Int8ProductKernel.chosen(for: format, kernel: nil, features: noF16C) == nil, "\(format) without F16C")
            #expect(Int8ProductKernel.chosen(for: format, kernel: .f32AVX2, features: zen4) == nil, "\(format) f32 forced")
            #expect(Int8ProductKernel.chosen(for: format, kernel: .f32AVX2, features: avx2) == nil, "\(format) f32 forced")
            #expect(Int8ProductKernel.chosen(for: format, kernel: .f32AVX512, features: zen4) == nil, "\(format) f32 forced")
            #expect(Int8ProductKernel.chosen(for: format, kernel: .f32AVX512, features: avx2) == (avx2Formats ? .avx2 : nil),
                    "\(format) unavailable f32 kernel")
            #expect(Int8ProductKernel.chosen(for: format, kernel: .int8VNNI, features: avx2) == (avx2Formats ? .avx2 : nil),
                    "\(format) unavailable VNNI kernel")
        }
        #expect(Int8ProductKernel.chosen(for: .bf16, kernel: nil, features: zen4) == nil)
        #expect(Int8ProductKernel.chosen(for: .f32, kernel: nil, features: avx2) == nil)
        let host = Int8ProductKernel.hostFeatures
        let q8 = try testMatrix(.q8_0, rows: 8, columns: 64, seed: 1)
        #expect(MatMul.int8ProductKernel(for: q8, rows: 5, kernel: nil, rowwise: false) == Int8ProductKernel.preferred(for: .q8_0, features: host))
        #expect(!MatMul.usesInt8Product(q8, rows: 4, kernel: nil, rowwise: false))
        #expect(!MatMul.usesInt8Product(q8, rows: 9, kernel: nil, rowwise: true))
        #expect(!MatMul.usesInt8Product(q8, rows: 9, kernel: .f32AVX2, rowwise: false))
    }

    /// `Precision.fast`'s vision arithmetic on a CPU with only the AVX2 product: float32, even
    /// where calibration measured the int8 product at least `fastMargin` times float32's rate
    /// (the int8 vision route through it left FastVisionTests' 2e-2 bound on coffee-v2-mask7,
    /// BENCHMARKS.md notes:vision10).
    @Test func fastVisionOnAVX2() {
        var avx2 = CPUProfile.Features()
        avx2.avx2 = true
        avx2.fma = true
        avx2.f16c = true
        let margin = CPUProfile.fastMargin
        let faster = CPUProfile(features: avx2, float32ProductRate: 80, bfloat16ProductRate: nil, int8ProductRate: 80 * margin)
        let slower = CPUProfile(features: avx2, float32ProductRate: 80, bfloat16ProductRate: nil, int8ProductRate: 80 * margin * 0.99)
        let none = CPUProfile(features: CPUProfile.Features(), float32ProductRate: 80, bfloat16ProductRate: nil, int8ProductRate: 200)
        #expect(faster.fastVisionArithmetic == .float32)
        #expect(slower.fastVisionArithmetic == .float32)
        #expect(none.fastVisionArithmetic == .float32)
    }
}
