import CLlavaUHD
@testable import LlavaUHD
import Testing
import TestSupport

/// The AVX2 int8 matrix product of prefill (`Int8ProductKernel.avx2`,
/// Sources/CLlavaUHD/quant_gemm_avx2.c), which runs on every CPU with AVX2, FMA and F16C (AVX-512
/// machines included, so these tests run everywhere the library does), and the choice between
/// the int8 products:
/// - the product is W·x~ (x~ the int8 image of x per block of 32, `int8Image`; IQ4_XS's
///   super-blocks of 256 taken as 8 blocks of 32, with column counts and ranges that cross them) within
///   1e-5·Σ|w·x~| of an f64 reference from the exactly dequantized weights (a NaN fails), and
///   W·x within the x-quantization bound, for every format it implements, row counts with every tail (1, 4, 5, 7, 13 rows of x against
///   steps of 6; 45 weight rows:
///   a 32-row tile and a 13-row one of a full and a partial panel of 8), on 1 and 2 threads with
///   the same bits;
/// - every tiling (tiles of 1-32 rows at any n0) and split into column ranges gives the bits of
///   one call over all columns, outputs outside the tile are not written, and invalid column
///   ranges write nothing (the checks shared with the K formats: `AVX2TileProduct`);
/// - a call over more columns than it takes in one pass (it splits them itself) is within the
///   same bounds and has the bits of other splits;
/// - the prepared x is its definition value for value;
/// - a non-finite block of x makes its row's outputs NaN and leaves the other rows alone.
@Suite struct AVX2Int8ProductTests {
    static let formats: [QuantFormat] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl, .iq4_xs]

    /// `columns` for the formats with blocks of 32, else (IQ4_XS) `superBlockColumns`, a
    /// multiple of 256.
    static func columns(_ format: QuantFormat, _ columns: Int, superBlockColumns: Int) -> Int {
        format.blockElements == 32 ? columns : superBlockColumns
    }

    static let kernel = AVX2TileProduct.blocksOf32

    /// Within 1e-5·Σ|w·x~| of W·x~ and within the x-quantization bound of W·x, for row counts with
    /// every tail (1, 4, 5, 7, 13 rows of x against steps of 6), on 1 and 2 threads with the same bits.
    @Test(arguments: formats)
    func againstReference(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        #expect(Int8ProductKernel.avx2.supports(format))
        try Self.kernel.checkAgainstReference(format, columns: Self.columns(format, 352, superBlockColumns: 512),
                                              rowCounts: [1, 4, 5, 7, 13])
    }

    /// Every tiling, and the columns in ranges of 32, 96 and the rest (IQ4_XS: 32, 256 across a
    /// super-block boundary and the rest), give the bits of one call; ranges that are not whole
    /// blocks or leave the matrix write nothing.
    @Test(arguments: formats)
    func tilingsAndColumnRanges(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let cols = Self.columns(format, 320, superBlockColumns: 768), middle = Self.columns(format, 128, superBlockColumns: 288)
        try Self.kernel.checkTilingsAndColumnRanges(format, columns: cols, ranges: [0..<32, 32..<middle, middle..<cols],
                                                     invalidRanges: [0..<16, 32..<40, 256..<(2 * cols), 32..<32])
    }

    /// A call over 9248 columns (IQ4_XS: 9216), more than one pass of the tile takes (227
    /// blocks, 7264 columns), splits them itself (ranges of 145 and 144 blocks) with the same
    /// bounds and bits.
    @Test(arguments: formats)
    func rangesInsideOneCall(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        let cols = Self.columns(format, 9248, superBlockColumns: 9216)
        try Self.kernel.checkRangesInsideOneCall(format, columns: cols,
                                                 splits: [[0..<32, 32..<cols], [0..<2080, 2080..<cols],
                                                          [0..<1024, 1024..<6144, 6144..<cols]])
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
    @Test(arguments: [QuantFormat.q8_0, .q4_0, .q4_1, .q5_0, .iq4_xs])
    func nonFiniteBlocks(format: QuantFormat) throws {
        try #require(Int8ProductKernel.avx2.isAvailable)
        try Self.kernel.checkNonFiniteRows(format, columns: Self.columns(format, 128, superBlockColumns: 256),
                                           poisoned: [(2, 70, .infinity)])
    }

    /// Which int8 product a feature set picks: VNNI where the CPU has AVX-512 VNNI (every block
    /// format), else AVX2 (its formats per 32, IQ4_XS's taken as blocks of 32, and the K formats
    /// Q2_K-Q6_K per 256; dense ones get none), none without AVX2+FMA+F16C; an f32 kernel the CPU
    /// runs forces none (exact f32), one it cannot run is ignored. Both products take x per 256
    /// for Q3_K-Q6_K, the AVX2 one for Q2_K too (the VNNI one per 32), and per 32 otherwise.
    /// `MatMul.usesInt8Product` follows the host's choice.
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
                let perSuperBlock = kFormat && (kernel == .avx2 || format != .q2_K)
                #expect(PreparedInt8Rows.Blocking(for: w, kernel: kernel) == (perSuperBlock ? .superBlocksOf256 : .blocksOf32),
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
