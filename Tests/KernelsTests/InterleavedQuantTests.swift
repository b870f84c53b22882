import CLlavaUHD
@testable import LlavaUHD
import Testing
import TestSupport

/// The row-interleaved copies of Q8_0 / Q4_0 / Q4_K matrices (`QuantizedMatrix.interleaved`,
/// Sources/CLlavaUHD/quant_repack.c) and the int8 VNNI kernels that read them
/// (quant_repacked_vnni.c): every result must be bit-identical to the kernels on the stored
/// layout (the same integer dot products and float operations in the same order), for 1-4 rows
/// of x (decode), 1-11 rows through the rowwise products of batched decode, more rows (prefill,
/// through tiles unpacked from the copy: directly for Q8_0 / Q4_0, from restored rows for Q4_K),
/// 1 and 2 threads;
/// the copy must give back the stored bytes exactly; the f32 kernels forced on an interleaved
/// matrix (the AVX2 path of CPUs without VNNI) keep reading the stored bytes. The scale-grouped
/// copies of the int8 AVX2 kernels (`QuantizedMatrix.grouped`) are checked the same way.
@Suite struct InterleavedQuantTests {
    static let formats: [QuantFormat] = [.q8_0, .q4_0, .q4_K]

    /// `y = x · Wᵀ` for `m` rows of x through `MatMul.linear`.
    static func product(_ x: [Float], m: Int, _ w: QuantizedMatrix, threads: Int, kernel: QuantKernel? = nil) -> [UInt32] {
        var y = [Float](repeating: .nan, count: m * w.rows)
        MatMul.linear(x, rows: m, weight: w, into: &y, context: ComputeContext(threads: threads), kernel: kernel)
        return y.map(\.bitPattern)
    }

    /// `y = x · Wᵀ` for `m` rows of x through the matrix-vector kernels however many rows
    /// (`rowwise`, as batched decode calls it).
    static func rowwiseProduct(_ x: [Float], m: Int, _ w: QuantizedMatrix, threads: Int) -> [UInt32] {
        var y = [Float](repeating: .nan, count: m * w.rows)
        MatMul.linear(x, rows: m, weight: w, into: &y, context: ComputeContext(threads: threads), rowwise: true)
        return y.map(\.bitPattern)
    }

    /// Checks one matrix: copy made when the CPU has VNNI, bytes restored exactly, products equal.
    static func check(_ w: QuantizedMatrix, label: String, seed: UInt64) throws {
        let copy = w.interleaved(threads: 2)
        #expect(w.canInterleave == QuantKernel.int8VNNI.isAvailable, "\(label): canInterleave")
        guard let data = copy.interleavedData else {
            // No VNNI: nothing is copied and the matrix is used as stored.
            #expect(!QuantKernel.int8VNNI.isAvailable, "\(label): no interleaved copy on a VNNI CPU")
            return
        }
        #expect(copy.data == w.data && copy.rows == w.rows && copy.columns == w.columns)
        var restored = [UInt8](repeating: 0, count: w.byteCount)
        luhd_quant_repack_rows_restore(Int32(w.format.ggmlType), data, w.rowBytes, 0, w.rows, w.columns, &restored)
        #expect(restored == Array(UnsafeRawBufferPointer(start: w.data, count: w.byteCount)), "\(label): restored bytes differ")
        var rng = TestRandom(seed: seed)
        for m in [1, 2, 3, 4, 5, 7] {
            let x = (0..<(m * w.columns)).map { _ in rng.uniform(-1, 1) * 3 }
            let stored = product(x, m: m, w, threads: 1, kernel: .int8VNNI)
            for threads in [1, 2] {
                #expect(product(x, m: m, copy, threads: threads) == stored, "\(label) m=\(m) threads=\(threads)")
            }
            if m <= 4 {
                // The f32 kernels (the AVX2 fallback, forced) read the stored bytes of a copy.
                #expect(product(x, m: m, copy, threads: 2, kernel: .f32AVX2) == product(x, m: m, w, threads: 2, kernel: .f32AVX2),
                        "\(label) m=\(m) f32AVX2")
            }
        }
        // Row ranges on whole row blocks keep the copy; others fall back to the stored bytes.
        let sub = copy.rows(4..<8), odd = copy.rows(1..<5)
        #expect(sub.interleavedData != nil && odd.interleavedData == nil)
        let x = (0..<w.columns).map { _ in rng.uniform(-1, 1) }
        #expect(product(x, m: 1, sub, threads: 1) == product(x, m: 1, w.rows(4..<8), threads: 1, kernel: .int8VNNI))
    }

    @Test(arguments: formats)
    func bitIdenticalToStoredLayout(format: QuantFormat) throws {
        for (rows, cols) in [(8, 256), (12, 512), (40, 2816)] {
            try Self.check(testMatrix(format, rows: rows, columns: cols, seed: UInt64(rows + cols)),
                           label: "\(format) \(rows)×\(cols)", seed: 17)
        }
    }

    /// Copies of at least 2 MiB (`StreamedBuffer.hugePageBytes`) live in 2 MiB-aligned memory
    /// with huge pages asked for: the same checks hold there.
    @Test(arguments: formats)
    func hugePageCopyBitIdentical(format: QuantFormat) throws {
        let w = try testMatrix(format, rows: 1024, columns: 4096, seed: 77)
        #expect(w.byteCount >= StreamedBuffer.hugePageBytes)
        if let data = w.interleaved(threads: 2).interleavedData {
            #expect(Int(bitPattern: data) % StreamedBuffer.hugePageBytes == 0, "\(format): copy not 2 MiB-aligned")
        }
        try Self.check(w, label: "\(format) 1024×4096", seed: 29)
    }

    /// Batched decode: 1...11 rows of x at once (odd counts; up to 4 in one kernel call, more in
    /// groups of 4 over blocks of 64 weight rows, 72 rows = one block and a part) through the
    /// rowwise products on the interleaved copy, 1 and 2 threads: every row's results are
    /// bit-identical to that row alone through the one-row kernel on the stored layout.
    @Test(arguments: formats)
    func rowwiseBatchesBitIdenticalToOneRow(format: QuantFormat) throws {
        for (rows, cols) in [(8, 256), (40, 2816), (72, 1024)] {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: UInt64(3 * rows + cols))
            let copy = w.interleaved(threads: 2)
            var rng = TestRandom(seed: 31)
            let most = 11
            let x = (0..<(most * cols)).map { _ in rng.uniform(-1, 1) * (rng.next(5) == 0 ? 40 : 2) }
            let alone = (0..<most).map { i in Self.product(Array(x[(i * cols)..<((i + 1) * cols)]), m: 1, w, threads: 1, kernel: .int8VNNI) }
            for m in 1...most {
                for threads in [1, 2] {
                    let got = Self.rowwiseProduct(Array(x[0..<(m * cols)]), m: m, copy, threads: threads)
                    for i in 0..<m {
                        #expect(Array(got[(i * rows)..<((i + 1) * rows)]) == alone[i], "\(format) \(rows)×\(cols) m=\(m) row \(i) threads=\(threads)")
                    }
                }
            }
        }
    }

    /// The blocks of Tests/Fixtures/gguf/quant_blocks (zero, negative-zero, negative, subnormal
    /// and large scales and mins, all-zero and all-one quants) cycled into an 8 × 512 matrix.
    @Test(arguments: formats)
    func fixtureBlocks(format: QuantFormat) throws {
        let file = try GGUFFile(path: Fixtures.root + "/gguf/quant_blocks/quant_blocks.gguf")
        let fixture = try file.matrix(format.lowercaseName)
        let blocks = fixture.byteCount / format.blockBytes
        let rows = 8, cols = 512
        let total = rows * cols / format.blockElements
        var bytes = [UInt8](repeating: 0, count: total * format.blockBytes)
        for b in 0..<total {
            let src = fixture.data + (b * 5 % blocks) * format.blockBytes
            for j in 0..<format.blockBytes { bytes[b * format.blockBytes + j] = src.load(fromByteOffset: j, as: UInt8.self) }
        }
        let owner = ByteOwner(bytes)
        let w = try QuantizedMatrix(name: "fixture", format: format, rows: rows, columns: cols,
                                    data: UnsafeRawPointer(owner.pointer), owner: owner)
        try Self.check(w, label: "\(format) fixture blocks", seed: 23)
    }

    /// The int8 product with a 1 MB budget of prepared x (`MatMul.int8Product(_:weight:into:
    /// ldOut:threads:xBytes:)`; 768 KB for x prepared per 256, 1152 instead of 1536 bytes a row),
    /// so that 700 rows of 1024 columns go in 2 ranges of columns and 2743 rows in single
    /// 256-column groups with the rows in 2 passes; from the stored layout
    /// and from the interleaved copy, 2 threads. Every result must be the bits of one
    /// `luhd_quant_gemm_tile` call per 16 weight rows over all columns and rows (the blocks are
    /// summed in the same order whatever the ranges and passes).
    @Test func int8ProductColumnRangesAndPasses() throws {
        guard QuantKernel.int8VNNI.isAvailable else { return }
        let cols = 1024, rows = 24
        for m in [700, 2743] {
            var rng = TestRandom(seed: UInt64(m))
            let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
            let prepared = [PreparedInt8Rows(x, rows: m, columns: cols, threads: 2),
                            PreparedInt8Rows(x, rows: m, columns: cols, blocking: .superBlocksOf256, threads: 2)]
            for format in Self.formats {
                let w = try testMatrix(format, rows: rows, columns: cols, seed: 9)
                let prepared = prepared[PreparedInt8Rows.Blocking(for: w) == .blocksOf32 ? 0 : 1]
                let budget = prepared.blocking == .blocksOf32 ? 1 << 20 : 3 << 18
                let expected = Self.sixteenRowTiles(prepared, weight: w)
                for (label, matrix) in [("stored layout", w), ("interleaved copy", w.interleaved(threads: 2))] {
                    var y = [Float](repeating: .nan, count: m * rows)
                    y.withUnsafeMutableBufferPointer { yb in
                        MatMul.int8Product(prepared, weight: matrix, into: yb.baseAddress!, ldOut: rows, threads: 2, xBytes: budget)
                    }
                    #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(format) m=\(m): \(label)")
                }
            }
        }
    }

    /// The reference of the int8 product tests: `[x.rows × w.rows]`, one call per 16 weight rows
    /// over all columns and rows of x (stored layout): `luhd_quant_gemm_tile` for x prepared per
    /// 32, `luhd_quant_gemm_k_tile_columns` over all columns for x prepared per 256.
    static func sixteenRowTiles(_ x: PreparedInt8Rows, weight w: QuantizedMatrix) -> [Float] {
        let superBlocks = x.blocking == .superBlocksOf256
        let bytes = superBlocks ? luhd_quant_gemm_k_tile_bytes(w.columns) : luhd_quant_gemm_tile_bytes(w.columns)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { tile.deallocate() }
        var y = [Float](repeating: .nan, count: x.rows * w.rows)
        let fmt = Int32(w.format.ggmlType)
        y.withUnsafeMutableBufferPointer { yb in
            for n0 in stride(from: 0, to: w.rows, by: 16) {
                let nr = Int32(min(16, w.rows - n0))
                if superBlocks {
                    luhd_quant_gemm_k_tile_columns(fmt, w.data, w.rowBytes, n0, nr, w.columns, 0, w.columns, x.bytes, x.rows, tile,
                                                   yb.baseAddress!, w.rows, 0)
                } else {
                    luhd_quant_gemm_tile(fmt, w.data, w.rowBytes, n0, nr, w.columns, x.bytes, x.rows, tile, yb.baseAddress!, w.rows)
                }
            }
        }
        return y
    }

    /// The 32-row tiles of the int8 product (two 16-lane halves per broadcast of x) at a long
    /// row (8448 columns), 40 weight rows (a 32-row tile and an 8-row one) and 7 rows of x (a
    /// group of 4 and a tail of 3): every output of every kernel mode (whole blocks with and
    /// without offsets, split halves; per 256: sub-blocks with mins, halves, gathered or
    /// unpacked row by row) is the bits of one 16-row call (`sixteenRowTiles`).
    @Test func int8ProductTilesOf32Rows() throws {
        guard QuantKernel.int8VNNI.isAvailable else { return }
        let cols = 8448, rows = 40, m = 7
        var rng = TestRandom(seed: 41)
        let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
        let perBlock = PreparedInt8Rows(x, rows: m, columns: cols, threads: 2)
        let perSuperBlock = PreparedInt8Rows(x, rows: m, columns: cols, blocking: .superBlocksOf256, threads: 2)
        for format in [QuantFormat.q8_0, .q4_0, .q4_K, .q6_K, .q5_K, .q3_K] {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: 5)
            let prepared = PreparedInt8Rows.Blocking(for: w) == .blocksOf32 ? perBlock : perSuperBlock
            let expected = Self.sixteenRowTiles(prepared, weight: w)
            var y = [Float](repeating: .nan, count: m * rows)
            y.withUnsafeMutableBufferPointer { yb in
                MatMul.int8Product(prepared, weight: w, into: yb.baseAddress!, ldOut: rows, threads: 2)
            }
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(format)")
        }
    }

    /// Products of one x with several weights (`MatMul.linear(_:rows:weights:...)`, x prepared
    /// once for the int8 product) give the bits of one call per weight, for quantized weights of
    /// different formats (stored and interleaved) next to a dense one, and 3 rows (the
    /// matrix-vector kernels) as well as 37; and, without the dense one, 3 rows and 6 rows
    /// `rowwise` (the matrix-vector products in one parallel loop, x prepared once per format:
    /// two Q8_0 weights share it). With 37 rows the mixed weights take x per 32 (Q8_0) and per
    /// 256 (Q4_K, Q6_K: one image for both), and Q4_K with Q6_K alone share one image per 256 and
    /// one parallel loop (`MatMul.int8Products`).
    @Test func sharedInputProducts() throws {
        try BLAS.load()
        let cols = 512
        let q8 = try testMatrix(.q8_0, rows: 40, columns: cols, seed: 1)
        let q4k = try testMatrix(.q4_K, rows: 24, columns: cols, seed: 2).interleaved(threads: 2)
        let q6k = try testMatrix(.q6_K, rows: 16, columns: cols, seed: 3)
        var rng = TestRandom(seed: 8)
        let dense = (0..<(8 * cols)).map { _ in rng.uniform(-1, 1) }
        let owner = ByteOwner(dense.withUnsafeBytes { Array($0) })
        let view = TensorView(name: "d", dtype: .f32, shape: [8, cols], data: UnsafeRawPointer(owner.pointer), owner: owner)
        let q8b = try testMatrix(.q8_0, rows: 12, columns: cols, seed: 4).interleaved(threads: 2)
        let mixed: [LinearWeight] = [.quantized(q8), .dense(view), .quantized(q4k), .quantized(q6k)]
        let quantized: [LinearWeight] = [.quantized(q8), .quantized(q4k), .quantized(q8b), .quantized(q6k)]
        let kFormats: [LinearWeight] = [.quantized(q4k), .quantized(q6k)]   // one x image per 256 for both
        for (weights, m, rowwise) in [(mixed, 3, false), (mixed, 37, false), (quantized, 3, false), (quantized, 6, true),
                                      (kFormats, 37, false)] {
            let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) * 2 }
            let outs = weights.map { w in UnsafeMutablePointer<Float>.allocate(capacity: m * w.rows) }
            defer { for out in outs { out.deallocate() } }
            for threads in [1, 2] {
                let context = ComputeContext(threads: threads)
                MatMul.linear(x, rows: m, weights: zip(weights, outs).map { (weight: $0.0, out: $0.1) }, rowwise: rowwise,
                              context: context)
                for (w, out) in zip(weights, outs) {
                    var alone = [Float](repeating: .nan, count: m * w.rows)
                    MatMul.linear(x, rows: m, weight: w, into: &alone, rowwise: rowwise, context: context)
                    #expect(Array(UnsafeBufferPointer(start: out, count: m * w.rows)).map(\.bitPattern) == alone.map(\.bitPattern),
                            "m=\(m) threads=\(threads) \(w.name)")
                }
            }
        }
    }

    /// `luhd_quant_gemm_tile_columns_repacked` (the prefill tiles of Q8_0 / Q4_0 unpacked from the
    /// interleaved copy, no restored rows): for tiles starting inside a row block of 16 or 32
    /// (n0 = 4, 12, 44), of 1-32 rows (partial halves, a lone row block, rows that are no whole
    /// row block), over all columns and over two column ranges added in turn, every output is
    /// the bits of `luhd_quant_gemm_tile_columns` on the stored rows, and outputs outside the
    /// tile are not written; a start off a row block, a row length that is no multiple of 256 or
    /// a format without this path (Q4_K) writes nothing.
    @Test func repackedTilesEqualStoredTiles() throws {
        guard QuantKernel.int8VNNI.isAvailable else { return }
        let rows = 48, cols = 768, m = 9
        var rng = TestRandom(seed: 53)
        let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) * (rng.next(7) == 0 ? 30 : 2) }
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, threads: 1)
        let tile = UnsafeMutableRawPointer.allocate(byteCount: luhd_quant_gemm_tile_bytes(cols), alignment: 64)
        defer { tile.deallocate() }
        func run(_ call: (UnsafeMutablePointer<Float>) -> Void) -> [UInt32] {
            var y = [Float](repeating: .nan, count: m * rows)
            y.withUnsafeMutableBufferPointer { call($0.baseAddress!) }
            return y.map(\.bitPattern)
        }
        for format in [QuantFormat.q8_0, .q4_0] {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: 61)
            let interleaved = w.interleaved(threads: 1)   // owns the copy: kept alive to the end of the loop body
            defer { withExtendedLifetime(interleaved) {} }
            let copy = try #require(interleaved.interleavedData)
            let fmt = Int32(format.ggmlType)
            #expect(luhd_quant_gemm_repacked_supports(fmt) == 1)
            for (n0, nr) in [(0, 32), (4, 20), (12, 17), (44, 4), (0, 48), (8, 1), (16, 31)] {
                for ranges in [[0..<cols], [0..<256, 256..<cols]] {
                    let stored = run { y in
                        for (i, r) in ranges.enumerated() {
                            luhd_quant_gemm_tile_columns(fmt, w.data, w.rowBytes, n0, Int32(nr), cols, r.lowerBound, r.upperBound,
                                                         prepared.bytes, m, tile, y, rows, i > 0 ? 1 : 0)
                        }
                    }
                    let direct = run { y in
                        for (i, r) in ranges.enumerated() {
                            luhd_quant_gemm_tile_columns_repacked(fmt, copy, w.rowBytes, n0, Int32(nr), cols, r.lowerBound,
                                                                  r.upperBound, prepared.bytes, m, tile, y, rows, i > 0 ? 1 : 0)
                        }
                    }
                    #expect(direct == stored, "\(format) n0=\(n0) nr=\(nr) ranges=\(ranges.count)")
                    let written = (0..<(m * rows)).filter { i in i % rows >= n0 && i % rows < n0 + min(nr, 32) }
                    #expect(written.allSatisfy { !Float(bitPattern: direct[$0]).isNaN }
                            && direct.indices.filter { !written.contains($0) }.allSatisfy { Float(bitPattern: direct[$0]).isNaN },
                            "\(format) n0=\(n0) nr=\(nr): outputs outside the tile")
                }
            }
            let untouched = run { y in
                luhd_quant_gemm_tile_columns_repacked(fmt, copy, w.rowBytes, 2, 8, cols, 0, cols, prepared.bytes, m, tile, y, rows, 0)
                luhd_quant_gemm_tile_columns_repacked(fmt, copy, w.rowBytes, 0, 8, cols - 32, 0, cols - 32, prepared.bytes, m, tile, y,
                                                      rows, 0)
            }
            #expect(untouched.allSatisfy { Float(bitPattern: $0).isNaN }, "\(format): invalid calls wrote outputs")
        }
        #expect(luhd_quant_gemm_repacked_supports(Int32(QuantFormat.q4_K.ggmlType)) == 0)
    }

    /// The scale-grouped copies of the int8 AVX2 kernels (`QuantizedMatrix.grouped`, Q4_0, IQ4_NL,
    /// Q8_0, IQ4_XS, Q3_K, Q4_K, Q5_K and Q6_K on CPUs whose default kernel for them is int8 AVX2): everything `MatMul.linear` computes
    /// from a copy is the bits of the stored matrix, for 1-4 rows of x (the grouped kernel),
    /// 1-9 rows `rowwise` (batched decode), 37 rows (the int8 AVX2 product of prefill, from rows
    /// put back in the stored layout per tile), 1-3 threads, rows of 35 blocks (4 groups and 3
    /// after them; IQ4_XS, Q3_K-Q6_K: 5 super-blocks) and of 32 groups, and row ranges of the copy (any start: rows stay where they
    /// are); the prefill product with a 1 MB budget of prepared x (ranges of columns, and for 2743
    /// rows passes of rows) as well; a forced f32 kernel reads the stored bytes.
    /// Elsewhere (a VNNI CPU) no copy is made.
    @Test(arguments: [QuantFormat.q4_0, .iq4_nl, .q8_0, .iq4_xs, .q3_K, .q4_K, .q5_K, .q6_K])
    func scaleGroupedCopyBitIdentical(format: QuantFormat) throws {
        for (rows, cols) in [(37, format.blockElements == 256 ? 1280 : 1120), (40, 1024)] {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: UInt64(rows + cols))
            let copy = w.grouped(threads: 2)
            let expected = QuantKernel.preferred(for: format) == .int8AVX2
            #expect(w.canGroup == expected && (copy.interleavedData != nil) == expected, "\(format): copy made")
            guard expected else { continue }
            #expect(copy.interleavedLayout == .scaleGroups && copy.data == w.data && !copy.canGroup && !copy.canInterleave)
            var rng = TestRandom(seed: 71)
            for m in [1, 2, 3, 4, 37] {
                let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) * (rng.next(9) == 0 ? 20 : 2) }
                let stored = Self.product(x, m: m, w, threads: 1)
                for threads in [1, 2, 3] {
                    #expect(Self.product(x, m: m, copy, threads: threads) == stored, "\(format) \(rows)×\(cols) m=\(m) threads=\(threads)")
                }
                if m <= 4 {
                    #expect(Self.product(x, m: m, copy, threads: 2, kernel: .f32AVX2) == Self.product(x, m: m, w, threads: 2, kernel: .f32AVX2),
                            "\(format) m=\(m) f32AVX2")
                }
            }
            for m in 1...9 {
                let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
                #expect(Self.rowwiseProduct(x, m: m, copy, threads: 2) == Self.rowwiseProduct(x, m: m, w, threads: 1),
                        "\(format) \(rows)×\(cols) rowwise m=\(m)")
            }
            for range in [3..<20, 1..<2, 0..<rows] {
                let sub = copy.rows(range)
                #expect(sub.interleavedLayout == .scaleGroups, "\(format) rows \(range) keep the copy")
                for m in [1, 37] {
                    let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
                    #expect(Self.product(x, m: m, sub, threads: 2) == Self.product(x, m: m, w.rows(range), threads: 1),
                            "\(format) rows \(range) m=\(m)")
                }
            }
        }
        guard QuantKernel.preferred(for: format) == .int8AVX2, Int8ProductKernel.avx2.isAvailable else { return }
        let cols = 1024, rows = 40
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 9), copy = w.grouped(threads: 2)
        for m in [700, 2743] {
            var rng = TestRandom(seed: UInt64(m))
            let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
            let prepared = PreparedInt8Rows(x, rows: m, columns: cols, kernel: .avx2, threads: 2)
            func run(_ matrix: QuantizedMatrix, budget: Int) -> [UInt32] {
                var y = [Float](repeating: .nan, count: m * rows)
                y.withUnsafeMutableBufferPointer { yb in
                    MatMul.int8Product(prepared, weight: matrix, into: yb.baseAddress!, ldOut: rows, threads: 2, xBytes: budget)
                }
                return y.map(\.bitPattern)
            }
            let whole = run(w, budget: MatMul.int8ProductXBytes)
            #expect(run(copy, budget: 1 << 20) == whole && run(copy, budget: MatMul.int8ProductXBytes) == whole, "\(format) m=\(m)")
        }
    }

    /// Formats and shapes without an interleaved layout are used as stored.
    @Test func otherFormatsAndShapesStayStored() throws {
        for (format, rows, cols) in [(QuantFormat.q6_K, 8, 256), (.q5_K, 8, 256), (.q8_0, 6, 256), (.q4_0, 8, 96), (.bf16, 8, 256)] {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: 3)
            #expect(!w.canInterleave && w.interleaved(threads: 1).interleavedData == nil, "\(format) \(rows)×\(cols)")
        }
    }
}
