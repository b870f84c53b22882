/// Looks up the tensors a projector needs, all at once, so that a bad checkpoint is reported
/// with every missing or mis-shaped tensor named in one error rather than one at a time.
struct WeightChecklist {
    let store: WeightStore
    /// Prepended to every name (`model.mm_projector.`).
    let prefix: String
    private(set) var missing: [String] = []
    private(set) var mismatched: [String] = []

    init(store: WeightStore, prefix: String) {
        self.store = store
        self.prefix = prefix
    }

    /// The tensor `prefix + name` if it exists with `shape` and a float dtype; otherwise
    /// records the problem and returns a placeholder whose data must not be read (callers
    /// call `finish()`, which then throws, before using any tensor).
    mutating func tensor(_ name: String, shape: [Int]) -> TensorView {
        let full = prefix + name
        guard let t = store[full] else {
            missing.append(full)
            return Self.placeholder(full, shape)
        }
        guard t.shape == shape else {
            mismatched.append("\(full) has shape \(t.shape), expected \(shape)")
            return Self.placeholder(full, shape)
        }
        guard DType.floatWeights.contains(t.dtype) else {
            mismatched.append("\(full) has dtype \(t.dtype.rawValue), expected F32, F16 or BF16")
            return Self.placeholder(full, shape)
        }
        return t
    }

    /// Whether `prefix + name` exists (for optional tensors).
    func contains(_ name: String) -> Bool { store.contains(prefix + name) }

    /// Throws `.missingTensor` (or `.tensorMismatch` when nothing is missing) naming every
    /// problem found, prefixed with `what` (e.g. "Hiwin projector").
    func finish(_ what: String) throws(LlavaError) {
        if missing.isEmpty && mismatched.isEmpty { return }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing tensors: " + missing.joined(separator: ", ")) }
        if !mismatched.isEmpty { parts.append("mismatched tensors: " + mismatched.joined(separator: "; ")) }
        throw LlavaError(missing.isEmpty ? .tensorMismatch : .missingTensor, "\(what): " + parts.joined(separator: "; "))
    }

    /// A stand-in for a tensor that failed the checks (one float of storage).
    private static func placeholder(_ name: String, _ shape: [Int]) -> TensorView {
        let storage = FloatStorage(count: 1)
        return TensorView(name: name, dtype: .f32, shape: shape, data: UnsafeRawPointer(storage.pointer), owner: storage)
    }
}
