#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD

/// A read-only 2-D weight matrix `[rows, columns]` (PyTorch `Linear` layout: rows are outputs,
/// columns inputs) in one of the `QuantFormat`s, stored row-major with its blocks along each row:
/// row `r` is `rowBytes` bytes at `data + r·rowBytes`. Like `TensorView` it borrows its bytes
/// (from a memory mapping, or from storage it owns after `quantize`) and keeps their owner alive;
/// it is kept apart from `TensorView` because a block format has no per-element size.
package struct QuantizedMatrix: @unchecked Sendable {
    package let name: String
    package let format: QuantFormat
    /// Output dimension.
    package let rows: Int
    /// Input dimension (a multiple of `format.blockElements`).
    package let columns: Int
    /// Bytes per row.
    package let rowBytes: Int
    /// The first byte of row 0.
    package let data: UnsafeRawPointer
    /// Keeps the bytes alive (a mapping or an owned buffer).
    let owner: AnyObject?
    /// A load-time copy of the same bytes in another order (`byteCount` bytes), or nil: row-interleaved
    /// for the int8 VNNI matrix-vector kernels (`interleaved(threads:)`, see
    /// Sources/CLlavaUHD/quant_repack.c), or scale-grouped for the int8 AVX2 ones
    /// (`grouped(threads:)`, Sources/CLlavaUHD/quant_repack_avx2.c); `interleavedLayout` says which.
    package let interleavedData: UnsafeRawPointer?
    /// The layout of `interleavedData` (nil exactly when it is nil).
    package let interleavedLayout: RepackedLayout?
    /// Keeps `interleavedData` alive.
    let interleavedOwner: AnyObject?

    /// Wraps `rows × rowBytes` bytes at `data`. Throws `.tensorMismatch` when `columns` is not a
    /// positive multiple of the block size or the size overflows.
    package init(name: String, format: QuantFormat, rows: Int, columns: Int, data: UnsafeRawPointer,
                owner: AnyObject?) throws(LlavaError) {
        guard rows >= 0, let rb = format.rowBytes(columns: columns) else {
            throw LlavaError(.tensorMismatch, "tensor '\(name)': \(format.rawValue) needs a row length that is a positive multiple of \(format.blockElements), got \(columns)")
        }
        guard !rows.multipliedReportingOverflow(by: rb).overflow else {
            throw LlavaError(.tensorMismatch, "tensor '\(name)': \(rows) rows of \(rb) bytes overflow")
        }
        self.name = name
        self.format = format
        self.rows = rows
        self.columns = columns
        self.rowBytes = rb
        self.data = data
        self.owner = owner
        interleavedData = nil
        interleavedLayout = nil
        interleavedOwner = nil
    }

    /// A dense 2-D `TensorView` (F32, F16 or BF16) seen as a matrix, without copying.
    package init(_ view: TensorView) throws(LlavaError) {
        guard view.shape.count == 2 else {
            throw LlavaError(.tensorMismatch, "tensor '\(view.name)' has shape \(view.shape), expected a matrix")
        }
        guard let f = QuantFormat(dtype: view.dtype) else {
            throw LlavaError(.tensorMismatch, "tensor '\(view.name)' has dtype \(view.dtype.rawValue), expected F32, F16 or BF16")
        }
        try self.init(name: view.name, format: f, rows: view.shape[0], columns: view.shape[1], data: view.data, owner: view.owner)
    }

    /// Total bytes.
    package var byteCount: Int { rows * rowBytes }

    /// The bytes of row `r`.
    package func rowData(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Rows `range` as a matrix of their own (no copy). A row-interleaved copy is kept when the
    /// range starts and ends on row blocks of 4, a scale-grouped one for any non-empty range.
    package func rows(_ range: Range<Int>) -> QuantizedMatrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range \(range) outside 0..<\(rows)")
        let offset = range.lowerBound * rowBytes
        let keep = switch interleavedLayout {
        case .rowBlocks: range.lowerBound % 4 == 0 && range.count % 4 == 0 && range.count > 0
        case .scaleGroups: range.count > 0
        case nil: false
        }
        return QuantizedMatrix(unchecked: self, rows: range.count, data: data + offset, owner: owner,
                               interleaved: keep ? interleavedData.map { $0 + offset } : nil,
                               layout: keep ? interleavedLayout : nil, interleavedOwner: keep ? interleavedOwner : nil)
    }

    /// Same format and columns as `base`, other rows, bytes or load-time copy.
    private init(unchecked base: QuantizedMatrix, rows: Int, data: UnsafeRawPointer, owner: AnyObject?,
                 interleaved: UnsafeRawPointer?, layout: RepackedLayout?, interleavedOwner: AnyObject?) {
        name = base.name
        format = base.format
        self.rows = rows
        columns = base.columns
        rowBytes = base.rowBytes
        self.data = data
        self.owner = owner
        interleavedData = interleaved
        interleavedLayout = interleaved == nil ? nil : layout
        self.interleavedOwner = interleavedOwner
    }

    /// True when `interleaved(threads:)` makes a copy of this matrix: the CPU runs the int8 VNNI
    /// kernels, the format is Q8_0, Q4_0 or Q4_K, the row count a multiple of 4 and the row
    /// length a multiple of 256 (every projection of the 7B models).
    package var canInterleave: Bool {
        QuantKernel.int8VNNI.isAvailable && interleavedData == nil
            && luhd_quant_repack_supports(Int32(format.ggmlType), rows, columns) != 0
    }

    /// This matrix with a row-interleaved copy of its bytes for the int8 VNNI matrix-vector
    /// kernels (bit-identical results, faster: see Sources/CLlavaUHD/quant_repacked_vnni.c), or
    /// itself when `canInterleave` is false or the memory for the copy cannot be had. The copy is anonymous memory of `byteCount` bytes (`StreamedBuffer`)
    /// (as llama.cpp's CPU backend repacks into its own buffers); when the bytes come from a
    /// file mapping, the mapping's pages are released afterwards (`MappedFile.releasePages`), so
    /// resident memory holds one copy, not two. Products of every kernel keep working on the
    /// stored bytes (`data`), which page back in from the file if a non-VNNI kernel reads them;
    /// the int8 VNNI matrix product of prefill reads the interleaved copy too. Repacking reads
    /// and writes every byte once, split over `threads`.
    package func interleaved(threads: Int) -> QuantizedMatrix {
        guard canInterleave, let storage = StreamedBuffer(byteCount: byteCount) else { return self }
        let dst = SendablePointer(storage.bytes.assumingMemoryBound(to: UInt8.self))
        let fmt = Int32(format.ggmlType), blocks = rows / 4
        let parts = chunks(blocks, parts: max(1, threads) * 4)
        parallelFor(parts.count, threads: threads) { p in
            luhd_quant_repack_rows(fmt, self.data, self.rowBytes, 4 * parts[p].lowerBound, 4 * parts[p].upperBound,
                                   self.columns, dst.p)
        }
        (owner as? MappedFile)?.releasePages(data, count: byteCount)
        return QuantizedMatrix(unchecked: self, rows: rows, data: data, owner: owner, interleaved: UnsafeRawPointer(storage.bytes),
                               layout: .rowBlocks, interleavedOwner: storage)
    }

    /// True when `grouped(threads:)` makes a copy of this matrix: it has no copy yet, this CPU's
    /// default kernel for the format is int8 AVX2 (no int8 VNNI: `canInterleave` is false), the
    /// format is Q4_0, IQ4_NL or Q8_0 and a row holds at least one group of 8 blocks (256 columns), or
    /// IQ4_XS, Q3_K, Q4_K, Q5_K or Q6_K (whole super-blocks of 256 columns by definition).
    package var canGroup: Bool {
        interleavedData == nil && !canInterleave && rows > 0 && QuantKernel.preferred(for: format) == .int8AVX2
            && luhd_quant_grouped_supports(Int32(format.ggmlType), columns) != 0
    }

    /// This matrix with a scale-grouped copy of its bytes for the int8 AVX2 matrix-vector kernels
    /// (`RepackedLayout.scaleGroups`: each group's 8 f16 scales read in one load instead of
    /// gathered 18 or 34 bytes apart, Q4_K's 6-bit scales and mins in a form unpacked with fewer
    /// instructions and its nibbles in the kernel's order, Q3_K's, Q5_K's and Q6_K's 3-, 5- and 6-bit
    /// weights in three, five or six whole 256-bit loads in the kernel's order, IQ4_XS's eight
    /// 6-bit scales as one 48-bit field of signed values and its index bytes in the kernel's order;
    /// bit-identical results), or itself when `canGroup` is false
    /// or the memory for the copy cannot be had. The copy takes the place of `streamedCopy(threads:)`:
    /// anonymous memory of `byteCount` bytes asked for huge pages (`StreamedBuffer`), and when the
    /// bytes come from a file mapping its pages are released afterwards, so resident memory holds
    /// one copy. Decoding reads the copy; the int8 AVX2 matrix product of prefill puts the rows of
    /// each tile back in the stored layout from it (`restoreStored`), so the released file pages
    /// stay released; other kernels read the stored bytes (`data`), which page back in from the
    /// file. Grouping reads and writes every byte once, split over `threads`.
    package func grouped(threads: Int) -> QuantizedMatrix {
        guard canGroup, let storage = StreamedBuffer(byteCount: byteCount) else { return self }
        let dst = SendablePointer(storage.bytes.assumingMemoryBound(to: UInt8.self))
        let fmt = Int32(format.ggmlType)
        let parts = chunks(rows, parts: max(1, threads) * 4)
        parallelFor(parts.count, threads: threads) { p in
            luhd_quant_grouped_rows(fmt, self.data, self.rowBytes, parts[p].lowerBound, parts[p].upperBound, self.columns, dst.p)
        }
        (owner as? MappedFile)?.releasePages(data, count: byteCount)
        return QuantizedMatrix(unchecked: self, rows: rows, data: data, owner: owner, interleaved: UnsafeRawPointer(storage.bytes),
                               layout: .scaleGroups, interleavedOwner: storage)
    }

    /// Writes rows `range` of the matrix, columns `columnRange` only (multiples of 256 for a
    /// row-interleaved copy and a scale-grouped IQ4_XS / Q3_K / Q4_K / Q5_K / Q6_K one, of 32 for a scale-grouped Q4_0 / IQ4_NL
    /// / Q8_0 one), in the stored layout to `dst` (row
    /// `range.lowerBound + i` at `dst + i·rowBytes`, each block at its stored offset), from the
    /// load-time copy; nothing when there is none. The stored bytes (`data`) are not read.
    package func restoreStored(rows range: Range<Int>, columns columnRange: Range<Int>, into dst: UnsafeMutableRawPointer) {
        guard let copy = interleavedData, let layout = interleavedLayout else { return }
        let fmt = Int32(format.ggmlType)
        switch layout {
        case .rowBlocks:
            luhd_quant_repack_rows_restore_columns(fmt, copy, rowBytes, range.lowerBound, range.upperBound,
                                                   columnRange.lowerBound, columnRange.upperBound, dst)
        case .scaleGroups:
            luhd_quant_grouped_rows_restore_columns(fmt, copy, rowBytes, range.lowerBound, range.upperBound,
                                                    columnRange.lowerBound, columnRange.upperBound, columns, dst)
        }
    }

    /// True when `streamedCopy(threads:)` copies this matrix: its default matrix-vector kernel on
    /// this CPU reads the stored layout (`QuantKernel.int8AVX2`; the int8 VNNI kernels read
    /// `interleaved(threads:)` instead, and the int8 AVX2 kernels `grouped(threads:)` where
    /// `canGroup`), it spans at least one huge page (`StreamedBuffer.hugePageBytes`) and its
    /// bytes are borrowed from a file mapping.
    package var wantsStreamedCopy: Bool {
        interleavedData == nil && !canInterleave && !canGroup && QuantKernel.preferred(for: format) == .int8AVX2
            && byteCount >= StreamedBuffer.hugePageBytes && owner is MappedFile
    }

    /// This matrix with its bytes, in the stored layout, copied into anonymous memory asked for
    /// transparent huge pages (`StreamedBuffer`), or itself when `wantsStreamedCopy` is false or
    /// the memory cannot be had; the file mapping's pages are released afterwards, as for
    /// `interleaved(threads:)`, so resident memory holds one copy. Every decoded token streams
    /// the whole matrix: from 4 KiB pages of a file mapping the int8 AVX2 kernels read 82 % of
    /// what they read from 2 MiB pages on a 2-vCPU EPYC (Zen 3), two threads (BENCHMARKS.md
    /// notes:decode10). Results are unchanged (the same bytes). Copying is split over `threads`.
    package func streamedCopy(threads: Int) -> QuantizedMatrix {
        guard wantsStreamedCopy, let storage = StreamedBuffer(byteCount: byteCount) else { return self }
        let src = SendablePointer(UnsafeMutablePointer(mutating: data.assumingMemoryBound(to: UInt8.self)))
        let dst = SendablePointer(storage.bytes.assumingMemoryBound(to: UInt8.self))
        let parts = chunks(byteCount, parts: max(1, threads) * 4)
        parallelFor(parts.count, threads: threads) { p in
            (dst.p + parts[p].lowerBound).update(from: src.p + parts[p].lowerBound, count: parts[p].count)
        }
        (owner as? MappedFile)?.releasePages(data, count: byteCount)
        return QuantizedMatrix(unchecked: self, rows: rows, data: UnsafeRawPointer(storage.bytes), owner: storage,
                               interleaved: nil, layout: nil, interleavedOwner: nil)
    }

    /// Dequantizes rows `range` to f32 into `out` (`range.count × columns` floats, row-major),
    /// bit-exactly by the formulas of `QuantFormat` (each operation rounded to f32), split over
    /// `threads` threads.
    package func dequantize(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range \(range) outside 0..<\(rows)")
        let parts = chunks(range.count, parts: threads)
        let o = SendablePointer(out)
        let fmt = Int32(format.ggmlType), cols = columns
        parallelFor(parts.count, threads: threads) { p in
            let r = parts[p]
            luhd_quant_dequantize(fmt, self.rowData(range.lowerBound + r.lowerBound), r.count * cols,
                                  o.p + r.lowerBound * cols)
        }
    }

    /// The whole matrix dequantized to f32 (a copy; for tests and small matrices).
    package func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { buf, n in
            if rows > 0 { dequantize(rows: 0..<rows, into: buf.baseAddress!) }
            n = rows * columns
        }
    }

    /// Quantizes a row-major f32 matrix with GGML's reference quantizer (round to nearest) into
    /// storage the result owns. Supported targets: Q8_0, Q4_0 and the dense F32/F16/BF16 (F16
    /// and BF16 round to nearest even). Throws `.invalidArgument` for other formats or a row
    /// length that is not a multiple of 32.
    package static func quantize(_ x: UnsafePointer<Float>, rows: Int, columns: Int, format: QuantFormat,
                                name: String = "") throws(LlavaError) -> QuantizedMatrix {
        guard let rb = format.rowBytes(columns: columns), rows >= 0 else {
            throw LlavaError(.invalidArgument, "cannot quantize \(rows)×\(columns) to \(format.rawValue): row length must be a positive multiple of \(format.blockElements)")
        }
        guard [.q8_0, .q4_0, .f32, .f16, .bf16].contains(format) else {
            throw LlavaError(.invalidArgument, "quantizing to \(format.rawValue) is not supported (only Q8_0, Q4_0 and dense formats)")
        }
        let storage = QuantizedStorage(byteCount: max(1, rows * rb))
        let out = storage.bytes
        for r in 0..<rows {
            let src = x + r * columns, dst = out + r * rb
            switch format {
            case .q8_0: luhd_quant_quantize_q8_0(src, columns, dst)
            case .q4_0: luhd_quant_quantize_q4_0(src, columns, dst)
            case .f32: dst.copyMemory(from: src, byteCount: columns * 4)
            case .f16:
                let h = dst.assumingMemoryBound(to: Float16.self)
                for i in 0..<columns { h[i] = Float16(src[i]) }
            case .bf16:
                let h = dst.assumingMemoryBound(to: UInt16.self)
                for i in 0..<columns { h[i] = bfloat16Bits(src[i]) }
            default: break
            }
        }
        return try QuantizedMatrix(name: name, format: format, rows: rows, columns: columns,
                                   data: UnsafeRawPointer(out), owner: storage)
    }
}

/// Round-to-nearest-even f32 → bf16 bits (NaN stays NaN).
func bfloat16Bits(_ f: Float) -> UInt16 {
    if f.isNaN { return 0x7FC0 }
    let b = f.bitPattern
    return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
}

/// A 64-byte-aligned heap buffer owned by a `QuantizedMatrix` made by `quantize`.
final class QuantizedStorage: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer

    init(byteCount: Int) {
        bytes = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    deinit { bytes.deallocate() }
}
