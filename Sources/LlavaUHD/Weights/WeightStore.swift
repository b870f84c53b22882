/// All tensors of a model directory, memory-mapped: either one `model.safetensors` or the shards
/// named by `model.safetensors.index.json`. Immutable after loading and safe to share between
/// threads. Tensors are looked up by their upstream names and checked for shape and dtype.
/// Nothing is copied at load: every `TensorView` points into a file mapping.
package final class WeightStore: @unchecked Sendable {
    /// The safetensors files, in the order they were opened.
    package let files: [SafetensorsFile]
    private let byName: [String: TensorView]

    /// File names looked for in a model directory.
    package static let singleFileName = "model.safetensors"
    package static let indexFileName = "model.safetensors.index.json"

    /// Loads a model directory. As transformers does, a single `model.safetensors` is preferred
    /// when present; otherwise `model.safetensors.index.json` names the shards. Every shard must
    /// exist, and the index and the shards' headers must agree tensor by tensor (no tensor
    /// missing from its shard, none stored in another shard or in two shards, none left out of
    /// the index). `progress` is called with a fraction in [0, 1] after each file is
    /// validated; returning false cancels the load (`.cancelled`).
    ///
    /// Throws `.io` when the directory or a file cannot be read or the directory has no weight
    /// file, `.badWeights` for any malformed file or index, `.unsupported` for an unreadable
    /// dtype, `.cancelled` from the progress callback.
    package convenience init(directory: String, progress: ((Double) -> Bool)? = nil) throws(LlavaError) {
        guard directoryExists(directory) else {
            throw LlavaError(.io, "model directory '\(directory)' does not exist or is not a directory")
        }
        let single = directory + "/" + Self.singleFileName
        let indexPath = directory + "/" + Self.indexFileName
        if pathExists(single) {
            try self.init(paths: [single], index: nil, progress: progress)
        } else if pathExists(indexPath) {
            let index = try SafetensorsIndex(path: indexPath)
            for shard in index.shards where !pathExists(directory + "/" + shard) {
                throw LlavaError(.badWeights, "\(indexPath): shard '\(shard)' does not exist in '\(directory)'")
            }
            try self.init(paths: index.shards.map { directory + "/" + $0 }, index: (index, indexPath), progress: progress)
        } else {
            throw LlavaError(.io, "'\(directory)' has neither \(Self.singleFileName) nor \(Self.indexFileName)")
        }
    }

    /// Loads explicit safetensors files (no index). A tensor name found in two files is an
    /// error (`.badWeights`).
    package convenience init(paths: [String]) throws(LlavaError) {
        try self.init(paths: paths, index: nil, progress: nil)
    }

    private init(paths: [String], index: (SafetensorsIndex, String)?,
                 progress: ((Double) -> Bool)?) throws(LlavaError) {
        var files: [SafetensorsFile] = []
        var byName: [String: TensorView] = [:]
        var fileOf: [String: Int] = [:]
        for (i, path) in paths.enumerated() {
            let file = try SafetensorsFile(path: path)
            for t in file.tensors {
                if let other = fileOf[t.name] {
                    throw LlavaError(.badWeights, "tensor '\(t.name)' is stored twice: in '\(paths[other])' and '\(path)'")
                }
                fileOf[t.name] = i
                byName[t.name] = t
            }
            files.append(file)
            if let progress, !progress(Double(i + 1) / Double(paths.count)) {
                throw LlavaError(.cancelled, "model loading cancelled by the progress callback")
            }
        }
        if case let (index, indexPath)? = index {
            let shardNumber = Dictionary(uniqueKeysWithValues: index.shards.enumerated().map { ($1, $0) })
            for (name, shard) in index.weightMap {
                guard let actual = fileOf[name] else {
                    throw LlavaError(.badWeights, "\(indexPath): names tensor '\(name)' in '\(shard)' but no shard holds it")
                }
                guard shardNumber[shard] == actual else {
                    throw LlavaError(.badWeights,
                                     "\(indexPath): puts tensor '\(name)' in '\(shard)' but it is stored in '\(paths[actual])'")
                }
            }
            if byName.count != index.weightMap.count {
                let listed = Set(index.weightMap.map(\.tensor))
                if let extra = byName.keys.sorted().first(where: { !listed.contains($0) }), let i = fileOf[extra] {
                    throw LlavaError(.badWeights, "\(indexPath): tensor '\(extra)' in '\(paths[i])' is not listed in weight_map")
                }
            }
        }
        self.files = files
        self.byName = byName
    }

    /// Every tensor name, sorted.
    package var names: [String] { byName.keys.sorted() }

    /// Number of tensors.
    package var count: Int { byName.count }

    /// The tensor called `name`, unchecked, or nil.
    package subscript(name: String) -> TensorView? { byName[name] }

    package func contains(_ name: String) -> Bool { byName[name] != nil }

    /// The tensor called `name`, checked: it must exist (`.missingTensor`), have exactly `shape`
    /// when given (`.tensorMismatch`) and one of `dtypes` (`.tensorMismatch`). Messages name
    /// the tensor, what it is and what was expected.
    package func tensor(_ name: String, shape: [Int]? = nil,
                       dtypes: Set<DType> = DType.floatWeights) throws(LlavaError) -> TensorView {
        guard let t = byName[name] else { throw LlavaError(.missingTensor, "tensor '\(name)' is not in the weight files") }
        if let shape, t.shape != shape {
            throw LlavaError(.tensorMismatch, "tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        guard dtypes.contains(t.dtype) else {
            throw LlavaError(.tensorMismatch,
                             "tensor '\(name)' has dtype \(t.dtype.rawValue), expected one of \(dtypes.map(\.rawValue).sorted())")
        }
        return t
    }

    /// Total bytes of tensor data across all files.
    package var totalBytes: Int { byName.values.reduce(0) { $0 + $1.byteCount } }

    /// Bytes of tensor data per dtype.
    package var bytesByDType: [DType: Int] {
        var out: [DType: Int] = [:]
        for t in byName.values { out[t.dtype, default: 0] += t.byteCount }
        return out
    }

    /// The dtype holding most of the tensor bytes (nil for an empty store); ties go to the
    /// dtype listed first in `DType.allCases`.
    package var predominantDType: DType? {
        let bytes = bytesByDType
        return DType.allCases.filter { bytes[$0] != nil }.max { (bytes[$0] ?? 0) < (bytes[$1] ?? 0) }
    }
}
