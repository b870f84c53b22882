import CLlavaUHD
@testable import LlavaUHD
import TestSupport
import Testing

/// The int8 AVX2 matrix-vector kernels (`QuantKernel.int8AVX2`, quant_matvec_int8_avx2.c): the
/// contract of `int8VNNI` (W·x~ with x~ the int8 image of x per 32, exact integer block sums)
/// checked where it could break on this instruction set — the int16 saturation of vpmaddubsw at
/// the extreme weights and x, the pair layout of the prepared x, row splits, non-finite x — and
/// the kernel choice. `QuantKernelTests.matvecAgainstReference` covers random data against the
/// reference for 1-4 rows, shapes with partial groups, and thread counts.
@Suite struct Int8AVX2MatvecTests {
    static let formats: [QuantFormat] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .iq4_xs, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// `luhd_quant_matvec` with the int8 AVX2 kernel for rows `r` of `w` and `m` rows of x
    /// (prepared once), into `y` (m × w.rows, row stride w.rows).
    static func matvec(_ w: QuantizedMatrix, _ x: [Float], m: Int, rows r: Range<Int>, into y: inout [Float]) {
        let fmt = Int32(w.format.ggmlType), kid = QuantKernel.int8AVX2.rawValue
        let bytes = luhd_quant_prepared_bytes(fmt, kid, w.columns, Int32(m))
        let prep = UnsafeMutableRawPointer.allocate(byteCount: max(64, bytes), alignment: 64)
        defer { prep.deallocate() }
        luhd_quant_prepare(fmt, kid, x, w.columns, w.columns, Int32(m), prep)
        luhd_quant_matvec(fmt, kid, w.data, w.rowBytes, r.lowerBound, r.upperBound, w.columns, x, w.columns, prep, Int32(m),
                          &y, w.rows)
    }

    /// Worst |y − Σ w·x~| / Σ|w·x~| over all outputs (the reference in f64 from the exactly
    /// dequantized weights and the int8 image of each row of x).
    static func worstError(_ y: [Float], _ w: QuantizedMatrix, _ x: [Float], m: Int) -> Double {
        let wd = w.dequantized(), cols = w.columns
        var worst = 0.0
        for i in 0..<m {
            let xt = int8Image(Array(x[(i * cols)..<((i + 1) * cols)])).values
            for r in 0..<w.rows {
                var s = 0.0, sa = 0.0
                for k in 0..<cols {
                    s += Double(wd[r * cols + k]) * Double(xt[k])
                    sa += abs(Double(wd[r * cols + k]) * Double(xt[k]))
                }
                worst = max(worst, abs(Double(y[i * w.rows + r]) - s) / max(sa, 1e-30))
            }
        }
        return worst
    }

    /// A matrix whose every quantized value sits at the end of its range that makes vpmaddubsw's
    /// pair sums largest (Q8_0: −128 and 127; Q4_0, Q4_1, Q4_K: nibble 15 and 0; Q5_0, Q5_1,
    /// Q5_K: 31 and 0; IQ4_NL: index 0 (−127) and 15 (113); Q6_K: 63 with scales −128 and 127,
    /// and 0; Q3_K: 7 with scales −32, and 0 with scales 31; Q2_K: 3 and 0), with every f16
    /// scale and offset 0.01 (Q4_K, Q5_K: 6-bit scales and mins 63; Q2_K: scales and mins 15).
    static func extremeMatrix(_ format: QuantFormat, rows: Int, columns: Int) throws -> QuantizedMatrix {
        let bb = format.blockBytes, nb = rows * columns / format.blockElements
        var bytes = [UInt8](repeating: 0, count: nb * bb)
        let d = Float16(0.01).bitPattern
        for b in 0..<nb {
            let o = b * bb, high = b % 3 != 2   // every third block at the other end
            func fill(_ range: Range<Int>, _ value: UInt8) { for j in range { bytes[o + j] = value } }
            let q: UInt8 = high ? 0xFF : 0x00
            switch format {
            case .q8_0: fill(2..<34, high ? 0x80 : 0x7F)
            case .q4_0: fill(2..<18, q)
            case .iq4_nl: fill(2..<18, high ? 0x00 : 0xFF)
            case .iq4_xs: fill(2..<8, high ? 0xFF : 0x00); fill(8..<136, high ? 0x00 : 0xFF)   // scales 31 or -32
            case .q4_1: fill(4..<20, q)
            case .q5_0: fill(2..<22, q)
            case .q5_1: fill(4..<24, q)
            case .q4_K: fill(4..<16, 0xFF); fill(16..<144, q)
            case .q5_K: fill(4..<16, 0xFF); fill(16..<176, q)
            case .q2_K: fill(0..<16, 0xFF); fill(16..<80, q)   // scales and mins 15
            case .q3_K: fill(0..<96, q); fill(96..<108, high ? 0x00 : 0xFF)   // u 7 with scales -32, u 0 with 31
            default:   // Q6_K
                fill(0..<192, q)
                for j in 0..<16 { bytes[o + 192 + j] = j % 2 == 0 ? 0x80 : 0x7F }
            }
            for at in format.halfFloatFields { bytes[o + at] = UInt8(d & 0xFF); bytes[o + at + 1] = UInt8(d >> 8) }
        }
        let owner = ByteOwner(bytes)
        return try QuantizedMatrix(name: "extreme", format: format, rows: rows, columns: columns,
                                   data: UnsafeRawPointer(owner.pointer), owner: owner)
    }

    /// The extreme weights against x rows of all +1 (x~ = +127 everywhere), all −1, and
    /// alternating ±1: every pair of products at the int16 limit the kernel's comment derives
    /// (Q8_0 2·128·127 = 32512; the 5-bit formats 2·31·127 per vpmaddubsw lane, 4·31·127 after
    /// the first vphaddw). A saturated sum would be off by far more than the bound,
    /// 1e-5·Σ|w·x~| from the f64 reference.
    @Test(arguments: formats)
    func extremeValuesDoNotSaturate(format: QuantFormat) throws {
        guard QuantKernel.int8AVX2.isAvailable else { return }
        let cols = format.blockElements == 256 ? 768 : 352, rows = 6, m = 3
        let w = try Self.extremeMatrix(format, rows: rows, columns: cols)
        let x = (0..<(m * cols)).map { i -> Float in i / cols == 0 ? 1 : i / cols == 1 ? -1 : (i % 2 == 0 ? 1 : -1) }
        var y = [Float](repeating: .nan, count: m * rows)
        Self.matvec(w, x, m: m, rows: 0..<rows, into: &y)
        let worst = Self.worstError(y, w, x, m: m)
        #expect(worst <= 1e-5, "\(format): |err|/Σ|wx~| = \(worst)")
    }

    /// Any split of the rows over calls gives the same bits as one call, for 1-4 rows of x, and
    /// the results are within 1e-5·Σ|w·x~| of the reference: with one row of x a call keeps
    /// rows in flight (runs of rows side by side, then the rows left one by one), so calls of 1,
    /// 7, 1 and 14 rows and the whole (23 rows) cover runs of every length with and without rows
    /// left. 32-block formats: rows of 35 blocks (4 groups and 3 blocks after them), of 3 blocks
    /// (no whole group) and of 11 blocks (1 group and 3).
    @Test(arguments: formats)
    func rowSplitsGiveTheSameBits(format: QuantFormat) throws {
        guard QuantKernel.int8AVX2.isAvailable else { return }
        let shapes = format.blockElements == 256 ? [(23, 1280)] : [(23, 1120), (11, 96), (23, 352)]
        for (rows, cols) in shapes {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: 77)
            var rng = TestRandom(seed: 12)
            let x = (0..<(4 * cols)).map { _ in rng.uniform(-1, 1) * 3 }
            for m in 1...4 {
                var whole = [Float](repeating: .nan, count: m * rows), split = whole, single = whole
                Self.matvec(w, x, m: m, rows: 0..<rows, into: &whole)
                for part in [0..<1, 1..<8, 8..<9, 9..<rows] { Self.matvec(w, x, m: m, rows: part, into: &split) }
                for r in 0..<rows { Self.matvec(w, x, m: m, rows: r..<(r + 1), into: &single) }
                #expect(firstDifference(whole, split) == nil, "\(format) \(rows)×\(cols) m=\(m): split changed the bits")
                #expect(firstDifference(whole, single) == nil, "\(format) \(rows)×\(cols) m=\(m): rows alone changed the bits")
                let worst = Self.worstError(whole, w, x, m: m)
                #expect(worst <= 1e-5, "\(format) \(rows)×\(cols) m=\(m): |err|/Σ|wx~| = \(worst)")
            }
        }
    }

    /// A block of x holding an infinity or a NaN makes every output of its row of x NaN (as f32
    /// arithmetic would); the other rows of the same call are unaffected and within the bound.
    /// x: random values in ±3, an infinity in row 1 (block 2), a NaN in row 2 (block 5); the
    /// preparation of the hard finite cases is `preparationMatchesDefinition`'s.
    @Test(arguments: formats)
    func nonFiniteX(format: QuantFormat) throws {
        guard QuantKernel.int8AVX2.isAvailable else { return }
        let rows = 9, cols = format.blockElements == 256 ? 768 : 352, m = 3
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 4)
        var rng = TestRandom(seed: 8)
        var x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) * 3 }
        x[cols + 2 * 32 + 7] = -.infinity
        x[2 * cols + 5 * 32 + 30] = .nan
        var y = [Float](repeating: 0, count: m * rows)
        Self.matvec(w, x, m: m, rows: 0..<rows, into: &y)
        #expect(y[rows..<(3 * rows)].allSatisfy { $0.isNaN }, "\(format): rows of x with a non-finite value")
        #expect(y[0..<rows].allSatisfy { $0.isFinite }, "\(format): the finite row of x")
        let worst = Self.worstError(Array(y[0..<rows]), w, Array(x[0..<cols]), m: 1)
        #expect(worst <= 1e-5, "\(format): |err|/Σ|wx~| = \(worst)")
    }

    /// The prepared x is its definition, value for value (quant_matvec_int8_avx2.c): per group of
    /// 8 blocks, the int8 values of block b (round(x / dx), ties to even, clamped to ±127) at
    /// 64 (b % 4) + 16 (b / 4) (elements 0-15) and 32 bytes further (16-31), dx, dx · (sum of the
    /// block's values), the int16 sums of its halves; then the blocks after the last group in
    /// natural order and their dx. Inputs as in `kPreparationMatchesDefinition`; 1120 columns =
    /// 4 groups and 3 blocks.
    @Test func preparationMatchesDefinition() throws {
        guard QuantKernel.int8AVX2.isAvailable else { return }
        let cols = 1120, m = 3, nb = cols / 32, ng = nb / 8, nt = nb - 8 * ng
        let x = preparationInput(columns: cols, rows: m, block: 32, seed: 31)
        let fmt = Int32(QuantFormat.q4_0.ggmlType), kid = QuantKernel.int8AVX2.rawValue
        let bytes = luhd_quant_prepared_bytes(fmt, kid, cols, Int32(m)), stride = bytes / m
        #expect(bytes == m * luhd_quant_prepared_bytes(fmt, kid, cols, 1))
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { buf.deallocate() }
        luhd_quant_prepare(fmt, kid, x, cols, cols, Int32(m), buf)
        func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
        for i in 0..<m {
            let row = buf + i * stride
            for blk in 0..<nb {
                let (dx, values) = int8Block(x[(i * cols + 32 * blk)..<(i * cols + 32 * blk + 32)])
                let g = blk / 8, b = blk % 8
                if g < ng {
                    let gp = row + 352 * g
                    let q = (gp + 64 * (b % 4) + 16 * (b / 4)).assumingMemoryBound(to: Int8.self)
                    #expect((0..<32).allSatisfy { Int(q[$0 < 16 ? $0 : $0 + 16]) == values[$0] }, "row \(i) block \(blk): values")
                    let s0 = values[0..<16].reduce(0, +), s1 = values[16..<32].reduce(0, +)
                    let f = (gp + 256).assumingMemoryBound(to: Float.self), h = (gp + 320).assumingMemoryBound(to: Int16.self)
                    #expect(same(f[b], dx) && same(f[8 + b], dx * Float(s0 + s1)), "row \(i) block \(blk): dx, dx·X")
                    #expect(Int(h[2 * b]) == s0 && Int(h[2 * b + 1]) == s1, "row \(i) block \(blk): half sums")
                } else {
                    let t = blk - 8 * ng, tail = row + 352 * ng
                    let q = (tail + 32 * t).assumingMemoryBound(to: Int8.self)
                    #expect((0..<32).allSatisfy { Int(q[$0]) == values[$0] }, "row \(i) tail block \(t): values")
                    #expect(same((tail + 32 * nt + 4 * t).load(as: Float.self), dx), "row \(i) tail block \(t): dx")
                }
            }
        }
    }

    /// The default kernel for a set of kernels a CPU runs: int8 VNNI for every block format
    /// where present, else int8 AVX2 for the formats it implements (`formats`), else
    /// the widest f32 kernel; on this CPU, the set it runs. The int8 AVX2 kernel runs wherever
    /// AVX2, FMA and F16C do (the f32 AVX2 kernel's requirement).
    @Test func preferredKernelForFeatureSets() {
        func pick(_ f: QuantFormat, _ set: Set<QuantKernel>) -> QuantKernel { QuantKernel.preferred(for: f) { set.contains($0) } }
        let avx2: Set<QuantKernel> = [.f32AVX2, .int8AVX2], avx512: Set<QuantKernel> = [.f32AVX2, .f32AVX512, .int8AVX2]
        let vnni = avx512.union([.int8VNNI])
        let here = Set(QuantKernel.allCases.filter(\.isAvailable))
        for f in QuantFormat.allCases {
            let int8AVX2 = Self.formats.contains(f)
            #expect(QuantKernel.int8AVX2.supports(f) == int8AVX2, "\(f)")
            #expect(pick(f, [.f32AVX2]) == .f32AVX2, "\(f)")
            #expect(pick(f, avx2) == (int8AVX2 ? .int8AVX2 : .f32AVX2), "\(f)")
            #expect(pick(f, avx512) == (int8AVX2 ? .int8AVX2 : .f32AVX512), "\(f)")
            #expect(pick(f, vnni) == (f.isBlockQuantized ? .int8VNNI : .f32AVX512), "\(f)")
            #expect(QuantKernel.preferred(for: f) == pick(f, here), "\(f): this CPU")
        }
        #expect(QuantKernel.int8AVX2.isAvailable == QuantKernel.f32AVX2.isAvailable)
    }

    /// The scale-grouped copy of `w` (`luhd_quant_grouped_rows`, made in the row ranges `parts`,
    /// as the loader splits it over threads), in memory the result owns.
    static func groupedCopy(_ w: QuantizedMatrix, parts: [Range<Int>]) -> ByteOwner {
        let copy = ByteOwner([UInt8](repeating: 0xA5, count: w.byteCount))
        for p in parts {
            luhd_quant_grouped_rows(Int32(w.format.ggmlType), w.data, w.rowBytes, p.lowerBound, p.upperBound, w.columns, copy.pointer)
        }
        return copy
    }

    /// `luhd_quant_matvec_grouped` on the grouped copy `copy` of `w`, as `matvec` does on the
    /// stored layout.
    static func groupedMatvec(_ w: QuantizedMatrix, copy: UnsafeRawPointer, _ x: [Float], m: Int, rows r: Range<Int>,
                              into y: inout [Float]) {
        let fmt = Int32(w.format.ggmlType), kid = QuantKernel.int8AVX2.rawValue
        let bytes = luhd_quant_prepared_bytes(fmt, kid, w.columns, Int32(m))
        let prep = UnsafeMutableRawPointer.allocate(byteCount: max(64, bytes), alignment: 64)
        defer { prep.deallocate() }
        luhd_quant_prepare(fmt, kid, x, w.columns, w.columns, Int32(m), prep)
        luhd_quant_matvec_grouped(fmt, copy, w.rowBytes, r.lowerBound, r.upperBound, w.columns, prep, Int32(m), &y, w.rows)
    }

    /// The scale-grouped copy (quant_repack_avx2.c) and its kernel give the stored-layout kernel's
    /// bits for 1-4 rows of x, over the whole matrix, the row splits of `rowSplitsGiveTheSameBits`
    /// (runs of rows in flight with and without rows left) and each row alone, for rows of 35
    /// blocks (4 groups and 3 blocks after them), 11 (1 and 3), 8 (one group), 128 + 5 (16 and
    /// 5) (IQ4_XS, Q3_K, Q4_K, Q5_K, Q6_K: 5 super-blocks, 1, 17), with random weights (random 6-bit
    /// scales for Q3_K and IQ4_XS, scales and mins for Q4_K / Q5_K, random int8 scales for Q6_K) and
    /// with `extremeMatrix`'s (every vpmaddubsw pair at its limit; IQ4_XS: its scales ls 63 and 0),
    /// and for Q6_K with `q6KExtremeScales`'s; the copy, made in 2 row ranges, restores to the stored bytes.
    @Test(arguments: [QuantFormat.q4_0, .iq4_nl, .q8_0, .iq4_xs, .q3_K, .q4_K, .q5_K, .q6_K])
    func groupedCopyGivesTheSameBits(format: QuantFormat) throws {
        guard QuantKernel.int8AVX2.isAvailable else { return }
        let fmt = Int32(format.ggmlType)
        let superBlocks = format.blockElements == 256
        let shapes = superBlocks ? [(23, 1280), (9, 256), (11, 4352)] : [(23, 1120), (23, 352), (9, 256), (11, 4256)]
        for (rows, cols) in shapes {
            var matrices = [("random", try testMatrix(format, rows: rows, columns: cols, seed: 91)),
                            ("extreme", try Self.extremeMatrix(format, rows: rows, columns: cols))]
            if format == .q6_K { matrices.append(("extreme scales", try Self.q6KExtremeScales(rows: rows, columns: cols))) }
            for (label, w) in matrices {
                let copy = Self.groupedCopy(w, parts: [0..<7, 7..<rows])
                var restored = [UInt8](repeating: 0, count: w.byteCount)
                luhd_quant_grouped_rows_restore_columns(fmt, copy.pointer, w.rowBytes, 0, rows, 0, cols, cols, &restored)
                #expect(restored == Array(UnsafeRawBufferPointer(start: w.data, count: w.byteCount)), "\(format) \(label) \(rows)×\(cols): restore")
                var rng = TestRandom(seed: 3)
                let x = (0..<(4 * cols)).map { _ in label == "extreme" ? (rng.next() % 2 == 0 ? 1 : -1) : rng.uniform(-1, 1) * 3 }
                for m in 1...4 {
                    var stored = [Float](repeating: .nan, count: m * rows), whole = stored, split = stored, single = stored
                    Self.matvec(w, x, m: m, rows: 0..<rows, into: &stored)
                    Self.groupedMatvec(w, copy: copy.pointer, x, m: m, rows: 0..<rows, into: &whole)
                    for part in [0..<1, 1..<8, 8..<9, 9..<rows] { Self.groupedMatvec(w, copy: copy.pointer, x, m: m, rows: part, into: &split) }
                    for r in 0..<rows { Self.groupedMatvec(w, copy: copy.pointer, x, m: m, rows: r..<(r + 1), into: &single) }
                    let tag = "\(format) \(label) \(rows)×\(cols) m=\(m)"
                    #expect(firstDifference(stored, whole) == nil, "\(tag): grouped copy")
                    #expect(firstDifference(stored, split) == nil, "\(tag): grouped copy, split")
                    #expect(firstDifference(stored, single) == nil, "\(tag): grouped copy, rows alone")
                }
            }
        }
    }

    /// A Q6_K matrix of random 6-bit weights (every value 0..63 occurs) whose 16 int8 scales are
    /// all −128 in one super-block, all 127 in the next, and so on (f16 d random as
    /// `testMatrix`'s).
    static func q6KExtremeScales(rows: Int, columns: Int) throws -> QuantizedMatrix {
        let random = try testMatrix(.q6_K, rows: rows, columns: columns, seed: 44)
        var bytes = Array(UnsafeRawBufferPointer(start: random.data, count: random.byteCount))
        for b in 0..<(bytes.count / 210) {
            for j in 0..<16 { bytes[210 * b + 192 + j] = b % 2 == 0 ? 0x80 : 0x7F }
        }
        let owner = ByteOwner(bytes)
        return try QuantizedMatrix(name: "q6K scales", format: .q6_K, rows: rows, columns: columns,
                                   data: UnsafeRawPointer(owner.pointer), owner: owner)
    }

    /// The grouped layout is its definition (quant_repack_avx2.c), byte for byte: in group g of
    /// a row (8 blocks of bb bytes, at 8·bb·g), the f16 scale of block b at 2b; its quants'
    /// half h (Q4_0: the 16 nibble bytes; Q8_0: quants 0-15, 16-31) at 16 + 32·H·(b % 4) + 32h
    /// + 16·(b / 4), H halves a block; the blocks after the last whole group as stored. Restoring
    /// a range of columns writes those blocks (at their stored offsets) and nothing else. Which
    /// formats and row lengths can be grouped: Q4_0, IQ4_NL and Q8_0 with a whole group (256
    /// columns), Q3_K-Q6_K with whole super-blocks.
    @Test(arguments: [QuantFormat.q4_0, .iq4_nl, .q8_0])
    func groupedLayoutMatchesDefinition(format: QuantFormat) throws {
        let rows = 3, cols = 608, bb = format.blockBytes, halves = (bb - 2) / 16, nb = cols / 32
        let fmt = Int32(format.ggmlType)
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 13)
        let copy = Self.groupedCopy(w, parts: [0..<rows])
        let stored = w.data.assumingMemoryBound(to: UInt8.self), grouped = copy.pointer.assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            for j in 0..<nb {
                let src = stored + r * w.rowBytes + j * bb, row = grouped + r * w.rowBytes
                let g = j / 8, b = j % 8
                if j >= 16 {   // after the 2 whole groups: as stored
                    #expect((0..<bb).allSatisfy { row[j * bb + $0] == src[$0] }, "\(format) row \(r) tail block \(j)")
                    continue
                }
                let base = row + 8 * bb * g
                #expect(base[2 * b] == src[0] && base[2 * b + 1] == src[1], "\(format) row \(r) block \(j): scale")
                for h in 0..<halves {
                    let at = base + 16 + 32 * halves * (b % 4) + 32 * h + 16 * (b / 4)
                    #expect((0..<16).allSatisfy { at[$0] == src[2 + 16 * h + $0] }, "\(format) row \(r) block \(j): half \(h)")
                }
            }
        }
        // Columns 64..<320 (blocks 2..<10, across the first group's end) of rows 1..<3.
        var partial = [UInt8](repeating: 0x5A, count: 2 * w.rowBytes)
        luhd_quant_grouped_rows_restore_columns(fmt, copy.pointer, w.rowBytes, 1, 3, 64, 320, cols, &partial)
        for i in 0..<(2 * w.rowBytes) {
            let inRange = (2 * bb..<(10 * bb)).contains(i % w.rowBytes)
            let expected = inRange ? stored[w.rowBytes + i] : 0x5A
            if partial[i] != expected { Issue.record("\(format): restored columns, byte \(i)"); break }
        }
        #expect(luhd_quant_grouped_supports(fmt, 256) == 1 && luhd_quant_grouped_supports(fmt, 224) == 0)
        #expect(luhd_quant_grouped_supports(fmt, 288) == 1 && luhd_quant_grouped_supports(fmt, 300) == 0)
        let q4K = Int32(QuantFormat.q4_K.ggmlType)
        #expect(luhd_quant_grouped_supports(q4K, 256) == 1 && luhd_quant_grouped_supports(q4K, 4352) == 1)
        #expect(luhd_quant_grouped_supports(q4K, 288) == 0 && luhd_quant_grouped_supports(q4K, 0) == 0)
        let q6K = Int32(QuantFormat.q6_K.ggmlType)
        #expect(luhd_quant_grouped_supports(q6K, 256) == 1 && luhd_quant_grouped_supports(q6K, 11008) == 1)
        #expect(luhd_quant_grouped_supports(q6K, 288) == 0 && luhd_quant_grouped_supports(q6K, 0) == 0)
        let q5K = Int32(QuantFormat.q5_K.ggmlType)
        #expect(luhd_quant_grouped_supports(q5K, 256) == 1 && luhd_quant_grouped_supports(q5K, 4352) == 1)
        #expect(luhd_quant_grouped_supports(q5K, 288) == 0 && luhd_quant_grouped_supports(q5K, 0) == 0)
        let q3K = Int32(QuantFormat.q3_K.ggmlType)
        #expect(luhd_quant_grouped_supports(q3K, 256) == 1 && luhd_quant_grouped_supports(q3K, 11008) == 1)
        #expect(luhd_quant_grouped_supports(q3K, 288) == 0 && luhd_quant_grouped_supports(q3K, 0) == 0)
        let iq4XS = Int32(QuantFormat.iq4_xs.ggmlType)
        #expect(luhd_quant_grouped_supports(iq4XS, 256) == 1 && luhd_quant_grouped_supports(iq4XS, 4352) == 1)
        #expect(luhd_quant_grouped_supports(iq4XS, 288) == 0 && luhd_quant_grouped_supports(iq4XS, 0) == 0)
        for other in QuantFormat.allCases where ![.q4_0, .iq4_nl, .q8_0, .iq4_xs, .q3_K, .q4_K, .q5_K, .q6_K].contains(other) {
            #expect(luhd_quant_grouped_supports(Int32(other.ggmlType), 1024) == 0, "\(other)")
        }
    }

    /// The 6-bit scale and min of sub-block `j` of a stored Q4_K super-block's 12 packed bytes
    /// `s` (GGUF's layout: scales / mins 0-3 the low 6 bits of bytes 0-3 / 4-7; 4-7 the nibbles
    /// of bytes 8-11, low for scales and high for mins, with the top bits of bytes 0-3 / 4-7 above).
    static func q4KScaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (scale: UInt8, min: UInt8) {
        if j < 4 { return (s[j] & 63, s[j + 4] & 63) }
        return ((s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4)
    }

    /// The grouped header of a Q4_K / Q5_K super-block (`dst`, 16 bytes) against the stored one
    /// (`src`): d and dmin at 0-3; at 4 + j the scale of sub-block j with its min's top 2 bits at
    /// bits 6-7; at 12-15 a little-endian u32 with the min's low 4 bits at bits 4j.
    static func expectGroupedKHeader(_ src: UnsafePointer<UInt8>, _ dst: UnsafePointer<UInt8>, _ tag: String) {
        #expect((0..<4).allSatisfy { dst[$0] == src[$0] }, "\(tag): d, dmin")
        var mins: UInt32 = 0
        for b in 0..<4 { mins |= UInt32(dst[12 + b]) << (8 * b) }
        for s in 0..<8 {
            let (scale, min) = q4KScaleMin(src + 4, s)
            #expect(dst[4 + s] == scale | (min >> 4) << 6 && UInt8((mins >> (4 * s)) & 15) == min & 15, "\(tag): sub-block \(s)")
        }
    }

    /// Restoring columns 256..<768 (super-blocks 1..<3) of rows 1..<3 from the grouped `copy` of
    /// `w` writes their stored bytes and nothing else; restoring `notOnSuperBlocks` (columns not
    /// on super-block boundaries) writes nothing.
    static func checkSuperBlockRestore(_ w: QuantizedMatrix, copy: ByteOwner, superBlockBytes sb: Int,
                                       notOnSuperBlocks: Range<Int>) {
        let fmt = Int32(w.format.ggmlType), stored = w.data.assumingMemoryBound(to: UInt8.self)
        var partial = [UInt8](repeating: 0x5A, count: 2 * w.rowBytes)
        luhd_quant_grouped_rows_restore_columns(fmt, copy.pointer, w.rowBytes, 1, 3, 256, 768, w.columns, &partial)
        for i in 0..<(2 * w.rowBytes) {
            let expected = (sb..<(3 * sb)).contains(i % w.rowBytes) ? stored[w.rowBytes + i] : 0x5A
            if partial[i] != expected { Issue.record("\(w.format): restored columns, byte \(i)"); break }
        }
        var untouched = [UInt8](repeating: 0x5A, count: w.rowBytes)
        luhd_quant_grouped_rows_restore_columns(fmt, copy.pointer, w.rowBytes, 0, 1, notOnSuperBlocks.lowerBound,
                                                notOnSuperBlocks.upperBound, w.columns, &untouched)
        #expect(untouched.allSatisfy { $0 == 0x5A }, "\(w.format): columns not on super-blocks")
    }

    /// The grouped Q4_K layout is its definition (quant_repack_avx2.c), byte for byte: in each
    /// 144-byte super-block (at its stored offset), d and dmin at 0-3; at 4 + j the scale of
    /// sub-block j with its min's top 2 bits at bits 6-7; at 12-15 a little-endian u32 with the
    /// min's low 4 bits at bits 4j; at 16 + 32(2c + h) bytes 16h..<16h+16 of nibble chunk c
    /// (stored at 16 + 32c) then of chunk c + 2. Restoring super-blocks 1..<3 of rows 1..<3
    /// writes those and nothing else; a range not on super-blocks writes nothing.
    @Test func groupedQ4KLayoutMatchesDefinition() throws {
        let rows = 3, cols = 1024, nb = cols / 256
        let w = try testMatrix(.q4_K, rows: rows, columns: cols, seed: 17)
        let copy = Self.groupedCopy(w, parts: [0..<rows])
        let stored = w.data.assumingMemoryBound(to: UInt8.self), grouped = copy.pointer.assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            for j in 0..<nb {
                let src = stored + r * w.rowBytes + 144 * j, dst = grouped + r * w.rowBytes + 144 * j
                let tag = "row \(r) super-block \(j)"
                Self.expectGroupedKHeader(src, dst, tag)
                for c in 0..<2 {
                    for h in 0..<2 {
                        let at = dst + 16 + 32 * (2 * c + h)
                        #expect((0..<16).allSatisfy { at[$0] == src[16 + 32 * c + 16 * h + $0] && at[16 + $0] == src[16 + 32 * (c + 2) + 16 * h + $0] },
                                "\(tag): nibbles \(c), \(h)")
                    }
                }
            }
        }
        Self.checkSuperBlockRestore(w, copy: copy, superBlockBytes: 144, notOnSuperBlocks: 32..<256)
    }

    /// The grouped Q5_K layout is its definition (quant_repack_avx2.c), byte for byte: in each
    /// 176-byte super-block (at its stored offset), bytes 0-15 as the grouped Q4_K header
    /// (`groupedQ4KLayoutMatchesDefinition`); with register v (0..<8) byte i the 5-bit weight of
    /// element 16(v mod 2) + i mod 16 of sub-block v / 2 + 4(i / 16) (its nibble from 32-byte
    /// chunk j / 2 at 48, low for even j; its fifth bit bit j of byte 16 + l), byte i of run r
    /// (0..<5, at 16 + 32r) is register r's byte i with bits 3r..<3r+3 of W = register 5 |
    /// register 6 << 5 | register 7 << 10 at bits 5-7. Restoring super-blocks 1..<3 of rows 1..<3
    /// writes those and nothing else; a range not on super-blocks writes nothing.
    @Test func groupedQ5KLayoutMatchesDefinition() throws {
        let rows = 3, cols = 1024, nb = cols / 256
        let w = try testMatrix(.q5_K, rows: rows, columns: cols, seed: 29)
        let copy = Self.groupedCopy(w, parts: [0..<rows])
        let stored = w.data.assumingMemoryBound(to: UInt8.self), grouped = copy.pointer.assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            for j in 0..<nb {
                let src = stored + r * w.rowBytes + 176 * j, dst = grouped + r * w.rowBytes + 176 * j
                let tag = "row \(r) super-block \(j)"
                Self.expectGroupedKHeader(src, dst, tag)
                func register(_ v: Int, _ i: Int) -> UInt32 {
                    let sub = v / 2 + 4 * (i / 16), l = 16 * (v % 2) + i % 16
                    return UInt32((src[48 + 32 * (sub / 2) + l] >> (4 * (sub % 2))) & 15 | ((src[16 + l] >> sub) & 1) << 4)
                }
                for run in 0..<5 {
                    let expected = (0..<32).map { i in
                        UInt8(register(run, i) | ((register(5, i) | register(6, i) << 5 | register(7, i) << 10) >> (3 * run) & 7) << 5)
                    }
                    #expect((0..<32).allSatisfy { dst[16 + 32 * run + $0] == expected[$0] }, "\(tag): run \(run)")
                }
            }
        }
        Self.checkSuperBlockRestore(w, copy: copy, superBlockBytes: 176, notOnSuperBlocks: 0..<224)
    }

    /// The 6-bit weight of element `l` (0..<32) of sub-block `t` (0..<4) of half `h` of a stored
    /// Q6_K super-block `s` (GGUF's layout: its low 4 bits in byte 64h + 32(t mod 2) + l, the low
    /// nibble for t < 2, the high one above; its top 2 bits at bits 2t of byte 128 + 32h + l).
    static func q6KWeight(_ s: UnsafePointer<UInt8>, _ h: Int, _ t: Int, _ l: Int) -> UInt8 {
        ((s[64 * h + 32 * (t % 2) + l] >> (4 * (t / 2))) & 15) | ((s[128 + 32 * h + l] >> (2 * t)) & 3) << 4
    }

    /// The grouped Q6_K layout is its definition (quant_repack_avx2.c), byte for byte: in each
    /// 210-byte super-block (at its stored offset), with register v (0..<8) byte i the weight of
    /// element 16(v mod 2) + i mod 16 of sub-block v / 2 of half i / 16: byte i of run r (0..<6,
    /// at 32r) is register r's byte i with bits 2(r mod 3)..<2(r mod 3)+2 of register 6 + r / 3's
    /// byte i at bits 6-7; the 16 scales and d at 192..<210 as stored. Restoring super-blocks
    /// 1..<3 of rows 1..<3 writes those and nothing else; a range not on super-blocks writes
    /// nothing.
    @Test func groupedQ6KLayoutMatchesDefinition() throws {
        let rows = 3, cols = 1024, nb = cols / 256
        let w = try testMatrix(.q6_K, rows: rows, columns: cols, seed: 23)
        let copy = Self.groupedCopy(w, parts: [0..<rows])
        let stored = w.data.assumingMemoryBound(to: UInt8.self), grouped = copy.pointer.assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            for j in 0..<nb {
                let src = stored + r * w.rowBytes + 210 * j, dst = grouped + r * w.rowBytes + 210 * j
                func register(_ v: Int, _ i: Int) -> UInt8 { Self.q6KWeight(src, i / 16, v / 2, 16 * (v % 2) + i % 16) }
                for run in 0..<6 {
                    let expected = (0..<32).map { i in register(run, i) | ((register(6 + run / 3, i) >> (2 * (run % 3))) & 3) << 6 }
                    #expect((0..<32).allSatisfy { dst[32 * run + $0] == expected[$0] }, "row \(r) super-block \(j): run \(run)")
                }
                #expect((192..<210).allSatisfy { dst[$0] == src[$0] }, "row \(r) super-block \(j): scales, d")
            }
        }
        Self.checkSuperBlockRestore(w, copy: copy, superBlockBytes: 210, notOnSuperBlocks: 0..<480)
    }

    /// The 3-bit u (low 2 bits + 4 × high bit, 0...7) of element `l` (0..<32) of sub-block `t`
    /// (0..<8) of a stored Q3_K super-block `s` (GGUF's layout: its high bit at bit t of byte l,
    /// its low 2 bits at bits 2(t mod 4) of byte 32 + 32(t / 4) + l).
    static func q3KWeight(_ s: UnsafePointer<UInt8>, _ t: Int, _ l: Int) -> UInt8 {
        ((s[32 + 32 * (t / 4) + l] >> (2 * (t % 4))) & 3) | ((s[l] >> t) & 1) << 2
    }

    /// The grouped Q3_K layout is its definition (quant_repack_avx2.c), byte for byte: in each
    /// 110-byte super-block (at its stored offset), with register v (0..<8) byte i the u of
    /// element 16(v mod 2) + i mod 16 of sub-block v / 2 + 4(i / 16): byte i of run r (0..<3, at
    /// 32r) is register 2r's byte i | register 2r + 1's << 3 | bits 2r..<2r+2 of W = register 6 |
    /// register 7 << 3 at bits 6-7; the 12 scale bytes and d at 96..<110 as stored. Restoring
    /// super-blocks 1..<3 of rows 1..<3 writes those and nothing else; a range not on super-blocks
    /// writes nothing.
    @Test func groupedQ3KLayoutMatchesDefinition() throws {
        let rows = 3, cols = 1024, nb = cols / 256
        let w = try testMatrix(.q3_K, rows: rows, columns: cols, seed: 31)
        let copy = Self.groupedCopy(w, parts: [0..<rows])
        let stored = w.data.assumingMemoryBound(to: UInt8.self), grouped = copy.pointer.assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            for j in 0..<nb {
                let src = stored + r * w.rowBytes + 110 * j, dst = grouped + r * w.rowBytes + 110 * j
                func register(_ v: Int, _ i: Int) -> UInt8 { Self.q3KWeight(src, v / 2 + 4 * (i / 16), 16 * (v % 2) + i % 16) }
                for run in 0..<3 {
                    let expected = (0..<32).map { i in
                        register(2 * run, i) | register(2 * run + 1, i) << 3 | (((register(6, i) | register(7, i) << 3) >> (2 * run)) & 3) << 6
                    }
                    #expect((0..<32).allSatisfy { dst[32 * run + $0] == expected[$0] }, "row \(r) super-block \(j): run \(run)")
                }
                #expect((96..<110).allSatisfy { dst[$0] == src[$0] }, "row \(r) super-block \(j): scales, d")
            }
        }
        Self.checkSuperBlockRestore(w, copy: copy, superBlockBytes: 110, notOnSuperBlocks: 0..<480)
    }

    /// The grouped IQ4_XS layout is its definition (quant_repack_avx2.c), byte for byte: in each
    /// 136-byte super-block (at its stored offset), d at 0-1; at 2-7 a 48-bit little-endian field
    /// whose bits 6j..<6j+6 are sub-block j's 6-bit scale ls_j − 32 in two's complement (ls_j from
    /// the stored u16 at 2, bits 2j..<2j+2 its top, and u32 at 4, bits 4j..<4j+4 its low 4 bits);
    /// at 8 + 32k sub-block k's 16 index bytes (stored at 8 + 16k), then sub-block k + 4's.
    /// Extreme scales (ls 0 and 63, in the same super-block) included. Restoring super-blocks
    /// 1..<3 of rows 1..<3 writes those and nothing else; a range not on super-blocks writes nothing.
    @Test func groupedIQ4XSLayoutMatchesDefinition() throws {
        let rows = 3, cols = 1024, nb = cols / 256
        let random = try testMatrix(.iq4_xs, rows: rows, columns: cols, seed: 31)
        var bytes = Array(UnsafeRawBufferPointer(start: random.data, count: random.byteCount))
        // Super-block 1 of each row: ls 0 for even sub-blocks, 63 for odd ones.
        for r in 0..<rows {
            let o = r * random.rowBytes + 136
            bytes[o + 2] = 0xCC; bytes[o + 3] = 0xCC
            for b in 0..<4 { bytes[o + 4 + b] = 0xF0 }
        }
        let owner = ByteOwner(bytes)
        let w = try QuantizedMatrix(name: "iq4xs", format: .iq4_xs, rows: rows, columns: cols,
                                    data: UnsafeRawPointer(owner.pointer), owner: owner)
        let copy = Self.groupedCopy(w, parts: [0..<rows])
        let stored = w.data.assumingMemoryBound(to: UInt8.self), grouped = copy.pointer.assumingMemoryBound(to: UInt8.self)
        for r in 0..<rows {
            for j in 0..<nb {
                let src = stored + r * w.rowBytes + 136 * j, dst = grouped + r * w.rowBytes + 136 * j
                let tag = "row \(r) super-block \(j)"
                #expect(dst[0] == src[0] && dst[1] == src[1], "\(tag): d")
                let high = UInt32(src[2]) | UInt32(src[3]) << 8
                var low: UInt32 = 0, field: UInt64 = 0
                for b in 0..<4 { low |= UInt32(src[4 + b]) << (8 * b) }
                for b in 0..<6 { field |= UInt64(dst[2 + b]) << (8 * b) }
                for s in 0..<8 {
                    let ls = Int((low >> (4 * s)) & 15 | ((high >> (2 * s)) & 3) << 4)
                    let f = Int((field >> (6 * s)) & 63)
                    #expect((f >= 32 ? f - 64 : f) == ls - 32, "\(tag): scale \(s)")
                    if j == 1 { #expect(ls == (s % 2 == 0 ? 0 : 63), "\(tag): extreme scale \(s)") }
                }
                for k in 0..<4 {
                    #expect((0..<16).allSatisfy { dst[8 + 32 * k + $0] == src[8 + 16 * k + $0] && dst[24 + 32 * k + $0] == src[8 + 16 * (k + 4) + $0] },
                            "\(tag): pair \(k)")
                }
            }
        }
        Self.checkSuperBlockRestore(w, copy: copy, superBlockBytes: 136, notOnSuperBlocks: 0..<480)
    }

    /// The huge-page copy decoding reads on CPUs whose default kernel for the format is int8 AVX2
    /// (`QuantizedMatrix.streamedCopy`): made for a matrix borrowed from a file mapping and at
    /// least one huge page long, holding the same bytes (so every product gives the same bits:
    /// checked for 1 and 4 rows of x on 2 threads); not made elsewhere (other CPUs, dense
    /// formats, smaller matrices, bytes the matrix owns).
    @Test func streamedCopyHoldsTheSameBytes() throws {
        let dir = TestFiles.makeTemporaryDirectory("streamed")
        defer { TestFiles.remove(dir) }
        for format in [QuantFormat.q4_1, .q5_1, .bf16] {
            let rows = 2 * (StreamedBuffer.hugePageBytes / format.rowBytes(columns: 1024)!) + 3, cols = 1024
            let source = try testMatrix(format, rows: rows, columns: cols, seed: 21)
            let path = dir + "/\(format.rawValue).bin"
            #expect(TestFiles.write(Array(UnsafeRawBufferPointer(start: source.data, count: source.byteCount)), to: path))
            let file = try MappedFile(path: path)
            let w = try QuantizedMatrix(name: "w", format: format, rows: rows, columns: cols, data: try #require(file.base), owner: file)
            let copy = w.streamedCopy(threads: 2)
            let expected = format.isBlockQuantized && QuantKernel.preferred(for: format) == .int8AVX2
            #expect(w.wantsStreamedCopy == expected && (copy.data != w.data) == expected, "\(format): copy made")
            func bytes(_ m: QuantizedMatrix) -> [UInt8] { Array(UnsafeRawBufferPointer(start: m.data, count: m.byteCount)) }
            #expect(bytes(copy) == bytes(source), "\(format): bytes")
            var rng = TestRandom(seed: 5)
            let x = (0..<(4 * cols)).map { _ in rng.uniform(-1, 1) }
            for m in [1, 4] {
                var a = [Float](repeating: .nan, count: m * rows), b = a
                MatMul.linear(x, rows: m, weight: source, into: &a, context: ComputeContext(threads: 2))
                MatMul.linear(x, rows: m, weight: copy, into: &b, context: ComputeContext(threads: 2))
                #expect(firstDifference(a, b) == nil, "\(format) m=\(m): products differ")
            }
        }
        let small = try testMatrix(.q4_1, rows: 8, columns: 256, seed: 2), owned = try testMatrix(.q4_0, rows: 4096, columns: 1024, seed: 2)
        #expect(!small.wantsStreamedCopy && !owned.wantsStreamedCopy, "small or owned matrices are not copied")
    }

    /// Where the scale-grouped copy applies (Q4_0, IQ4_NL, Q8_0, IQ4_XS, Q3_K, Q4_K, Q5_K and Q6_K on CPUs whose default kernel for them
    /// is int8 AVX2) it takes the huge-page copy's place: a matrix from a file mapping gets the
    /// grouped copy (2 MiB-aligned, the file's pages released, `data` still the mapping) and no
    /// streamed copy, and its products (1 row of x, 40 rows through the prefill product) are the
    /// bits of the stored matrix's.
    @Test func groupedCopyTakesTheStreamedCopysPlace() throws {
        let dir = TestFiles.makeTemporaryDirectory("grouped")
        defer { TestFiles.remove(dir) }
        for format in [QuantFormat.q4_0, .iq4_nl, .q8_0, .iq4_xs, .q3_K, .q4_K, .q5_K, .q6_K] {
            let cols = 1024, rows = 2 * (StreamedBuffer.hugePageBytes / format.rowBytes(columns: cols)!) + 3
            let source = try testMatrix(format, rows: rows, columns: cols, seed: 8)
            let path = dir + "/\(format.rawValue).bin"
            #expect(TestFiles.write(Array(UnsafeRawBufferPointer(start: source.data, count: source.byteCount)), to: path))
            let file = try MappedFile(path: path)
            let w = try QuantizedMatrix(name: "w", format: format, rows: rows, columns: cols, data: try #require(file.base), owner: file)
            let expected = QuantKernel.preferred(for: format) == .int8AVX2
            #expect(w.canGroup == expected && !w.wantsStreamedCopy, "\(format): grouped, not streamed")
            let copy = w.grouped(threads: 2)
            guard expected else { continue }
            let data = try #require(copy.interleavedData)
            #expect(Int(bitPattern: data) % StreamedBuffer.hugePageBytes == 0 && copy.data == w.data, "\(format): copy placement")
            var rng = TestRandom(seed: 6)
            for m in [1, 40] {
                let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
                var a = [Float](repeating: .nan, count: m * rows), b = a
                MatMul.linear(x, rows: m, weight: source, into: &a, context: ComputeContext(threads: 2))
                MatMul.linear(x, rows: m, weight: copy, into: &b, context: ComputeContext(threads: 2))
                #expect(firstDifference(a, b) == nil, "\(format) m=\(m): products differ")
            }
        }
    }
}
