import CLlavaUHD

/// A read-only 2-D weight matrix `[rows, columns]` (PyTorch `Linear` layout: rows are outputs,
/// columns inputs) in one of the `QuantFormat`s, stored row-major with its blocks along each row:
/// row `r` is `rowBytes` bytes at `data + r·rowBytes`. Like `TensorView` it borrows its bytes
/// (from a memory mapping, or from storage it owns after `quantize`) and keeps their owner alive;
/// it is kept apart from `TensorView` because a block format has no per-element size.
public struct QuantizedMatrix: @unchecked Sendable {
    public let name: String
    public let format: QuantFormat
    /// Output dimension.
    public let rows: Int
    /// Input dimension (a multiple of `format.blockElements`).
    public let columns: Int
    /// Bytes per row.
    public let rowBytes: Int
    /// The first byte of row 0.
    public let data: UnsafeRawPointer
    /// Keeps the bytes alive (a mapping or an owned buffer).
    let owner: AnyObject?

    /// Wraps `rows × rowBytes` bytes at `data`. Throws `.tensorMismatch` when `columns` is not a
    /// positive multiple of the block size or the size overflows.
    public init(name: String, format: QuantFormat, rows: Int, columns: Int, data: UnsafeRawPointer,
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
    }

    /// A dense 2-D `TensorView` (F32, F16 or BF16) seen as a matrix, without copying.
    public init(_ view: TensorView) throws(LlavaError) {
        guard view.shape.count == 2 else {
            throw LlavaError(.tensorMismatch, "tensor '\(view.name)' has shape \(view.shape), expected a matrix")
        }
        guard let f = QuantFormat(dtype: view.dtype) else {
            throw LlavaError(.tensorMismatch, "tensor '\(view.name)' has dtype \(view.dtype.rawValue), expected F32, F16 or BF16")
        }
        try self.init(name: view.name, format: f, rows: view.shape[0], columns: view.shape[1], data: view.data, owner: view.owner)
    }

    /// Total bytes.
    public var byteCount: Int { rows * rowBytes }

    /// The bytes of row `r`.
    public func rowData(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Rows `range` as a matrix of their own (no copy).
    public func rows(_ range: Range<Int>) -> QuantizedMatrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range \(range) outside 0..<\(rows)")
        return QuantizedMatrix(unchecked: self, rows: range.count, data: data + range.lowerBound * rowBytes)
    }

    /// Same format, columns and owner as `base`, other rows.
    private init(unchecked base: QuantizedMatrix, rows: Int, data: UnsafeRawPointer) {
        name = base.name
        format = base.format
        self.rows = rows
        columns = base.columns
        rowBytes = base.rowBytes
        self.data = data
        owner = base.owner
    }

    /// Dequantizes rows `range` to f32 into `out` (`range.count × columns` floats, row-major),
    /// bit-exactly by the formulas of `QuantFormat` (each operation rounded to f32), split over
    /// `threads` threads.
    public func dequantize(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>, threads: Int = 1) {
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
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { buf, n in
            if rows > 0 { dequantize(rows: 0..<rows, into: buf.baseAddress!) }
            n = rows * columns
        }
    }

    /// Quantizes a row-major f32 matrix with GGML's reference quantizer (round to nearest) into
    /// storage the result owns. Supported targets: Q8_0, Q4_0 and the dense F32/F16/BF16 (F16
    /// and BF16 round to nearest even). Throws `.invalidArgument` for other formats or a row
    /// length that is not a multiple of 32.
    public static func quantize(_ x: UnsafePointer<Float>, rows: Int, columns: Int, format: QuantFormat,
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
