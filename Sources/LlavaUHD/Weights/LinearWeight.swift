/// The weight matrix of a linear layer, `[rows, columns]` = `[out, in]` (PyTorch `Linear`
/// layout), as the loader found it in the file: either a dense F32/F16/BF16 tensor or a
/// block-quantized matrix (any block format of `QuantFormat`). Either way the bytes stay in the
/// memory mapping. `MatMul.linear(_:rows:weight:into:…)` runs the right kernels for each case,
/// so a model chooses its storage per tensor at load time (from the file's metadata) and
/// computes the same way after that.
public enum LinearWeight: @unchecked Sendable {
    case dense(TensorView)
    case quantized(QuantizedMatrix)

    /// The tensor's name in its file.
    public var name: String {
        switch self {
        case .dense(let t): t.name
        case .quantized(let q): q.name
        }
    }

    /// Output dimension.
    public var rows: Int {
        switch self {
        case .dense(let t): t.shape.first ?? 0
        case .quantized(let q): q.rows
        }
    }

    /// Input dimension.
    public var columns: Int {
        switch self {
        case .dense(let t): t.shape.count == 2 ? t.shape[1] : 0
        case .quantized(let q): q.columns
        }
    }

    /// Bytes of weights (what one matrix-vector product reads).
    public var byteCount: Int {
        switch self {
        case .dense(let t): t.byteCount
        case .quantized(let q): q.byteCount
        }
    }

    /// The storage format: "BF16", "F32", "Q8_0", "Q4_K", ...
    public var formatName: String {
        switch self {
        case .dense(let t): t.dtype.rawValue
        case .quantized(let q): q.format.rawValue
        }
    }

    /// True for the block-quantized formats.
    public var isQuantized: Bool {
        if case .quantized(let q) = self { return q.format.isBlockQuantized }
        return false
    }

    /// Writes row `r` (`columns` values) as float32 into `out`: the stored values widened
    /// (dense) or dequantized by the format's formulas (quantized). Used for embedding lookups.
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .dense(let t): t.convert(from: r * columns, count: columns, into: out)
        case .quantized(let q): q.dequantize(rows: r..<(r + 1), into: out)
        }
    }
}

extension WeightStore {
    /// Tensor `name` as a linear weight of shape `[rows, columns]`: a tensor that
    /// `ModelQuantizer` stored quantized (U8 blocks with a `luhd.quant.<name>` metadata entry)
    /// becomes `.quantized`, a 2-D F32/F16/BF16 tensor `.dense`. Throws `.missingTensor`,
    /// `.tensorMismatch` (shape, or a dtype that is neither) or `.badWeights` (quantized bytes
    /// that disagree with their metadata).
    public func linearWeight(_ name: String, shape: [Int]) throws(LlavaError) -> LinearWeight {
        if try quantization(of: name) != nil {
            return .quantized(try quantizedMatrix(name, shape: shape))
        }
        return .dense(try tensor(name, shape: shape))
    }
}
