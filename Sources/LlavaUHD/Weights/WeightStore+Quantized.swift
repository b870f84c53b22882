/// Reading the tensors `ModelQuantizer` wrote (see its documentation for the format).
extension WeightStore {
    /// The stored format and original `[rows, columns]` of tensor `name` when a
    /// `luhd.quant.<name>` metadata entry marks it as quantized, else nil. Throws `.badWeights`
    /// for an entry that does not parse.
    package func quantization(of name: String) throws(LlavaError) -> (format: QuantFormat, rows: Int, columns: Int)? {
        let key = ModelQuantizer.metadataPrefix + name
        for file in files {
            guard let value = file.metadata.first(where: { $0.0 == key })?.1 else { continue }
            let parts = value.utf8.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            let dims = parts.count == 2 ? parts[1].split(separator: UInt8(ascii: "x"), omittingEmptySubsequences: false) : []
            guard parts.count == 2, dims.count == 2,
                  let format = QuantFormat(name: String(decoding: parts[0], as: UTF8.self)), format.isBlockQuantized,
                  let rows = Int(String(decoding: dims[0], as: UTF8.self)),
                  let cols = Int(String(decoding: dims[1], as: UTF8.self)), rows >= 0, cols > 0 else {
                throw LlavaError(.badWeights, "\(file.path): metadata '\(key)' = '\(value)' is not '<format>:<rows>x<columns>'")
            }
            return (format, rows, cols)
        }
        return nil
    }

    /// Tensor `name` as a `QuantizedMatrix`: a quantized tensor (U8 blocks with a
    /// `luhd.quant.<name>` entry) with its original shape, or a dense 2-D F32/F16/BF16 tensor as
    /// it is. `shape` (`[rows, columns]`, the original shape) is checked when given. Throws
    /// `.missingTensor`, `.tensorMismatch` (wrong shape or dtype) or `.badWeights` (the U8
    /// tensor's size disagrees with its metadata).
    package func quantizedMatrix(_ name: String, shape: [Int]? = nil) throws(LlavaError) -> QuantizedMatrix {
        let t = try tensor(name, dtypes: DType.floatWeights.union([.u8]))
        let m: QuantizedMatrix
        if let q = try quantization(of: name) {
            guard let rb = q.format.rowBytes(columns: q.columns), t.dtype == .u8, t.shape == [q.rows, rb] else {
                throw LlavaError(.badWeights, "tensor '\(name)' is stored as \(t.dtype.rawValue) \(t.shape) but its metadata says \(q.format.rawValue) \(q.rows)x\(q.columns)")
            }
            m = try QuantizedMatrix(name: name, format: q.format, rows: q.rows, columns: q.columns, data: t.data, owner: t.owner)
        } else {
            guard t.dtype != .u8 else {
                throw LlavaError(.tensorMismatch, "tensor '\(name)' is U8 without a '\(ModelQuantizer.metadataPrefix)\(name)' metadata entry")
            }
            m = try QuantizedMatrix(t)
        }
        if let shape, shape != [m.rows, m.columns] {
            throw LlavaError(.tensorMismatch, "tensor '\(name)' has shape [\(m.rows), \(m.columns)], expected \(shape)")
        }
        return m
    }
}
