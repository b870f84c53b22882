/// All tensors of a model directory, memory-mapped: either one `model.safetensors` or the shards
/// named by `model.safetensors.index.json`. Immutable after loading and safe to share between
/// threads. Tensors are looked up by their upstream names and checked for shape and dtype.
public final class WeightStore: @unchecked Sendable {
    /// The safetensors files, in the order they were opened.
    public let files: [SafetensorsFile]
    private let byName: [String: TensorView]

    /// Loads a model directory. `progress` is called with a fraction in [0, 1] after each file
    /// is validated; returning false cancels the load (`.cancelled`).
    public convenience init(directory: String, progress: ((Double) -> Bool)? = nil) throws(LlavaError) {
        let index = directory + "/model.safetensors.index.json"
        let single = directory + "/model.safetensors"
        if fileExists(index) {
            let shards = try Self.readIndex(index)
            try self.init(paths: shards.files.map { directory + "/" + $0 }, expectedMap: shards.map,
                          directory: directory, progress: progress)
        } else if fileExists(single) {
            try self.init(paths: [single], expectedMap: nil, directory: directory, progress: progress)
        } else {
            throw LlavaError(.io, "'\(directory)' has neither model.safetensors nor model.safetensors.index.json")
        }
    }

    /// Loads explicit safetensors files (no index).
    public convenience init(paths: [String]) throws(LlavaError) {
        try self.init(paths: paths, expectedMap: nil, directory: nil, progress: nil)
    }

    private init(paths: [String], expectedMap: [(String, String)]?, directory: String?,
                 progress: ((Double) -> Bool)?) throws(LlavaError) {
        var files: [SafetensorsFile] = []
        var byName: [String: TensorView] = [:]
        var fileOf: [String: String] = [:]
        for (i, path) in paths.enumerated() {
            guard fileExists(path) else {
                throw LlavaError(directory == nil ? .io : .badWeights,
                                 "shard '\(path)' named by model.safetensors.index.json does not exist")
            }
            let file = try SafetensorsFile(path: path)
            for t in file.tensors {
                if let other = fileOf[t.name] {
                    throw LlavaError(.badWeights, "tensor '\(t.name)' is stored twice: in '\(other)' and '\(path)'")
                }
                fileOf[t.name] = path
                byName[t.name] = t
            }
            files.append(file)
            if let progress, !progress(Double(i + 1) / Double(paths.count)) {
                throw LlavaError(.cancelled, "model loading cancelled by the progress callback")
            }
        }
        if let expectedMap {
            for (name, shard) in expectedMap {
                guard let actual = fileOf[name] else {
                    throw LlavaError(.badWeights, "index names tensor '\(name)' in '\(shard)' but no shard holds it")
                }
                guard actual.hasSuffix("/" + shard) else {
                    throw LlavaError(.badWeights, "index puts tensor '\(name)' in '\(shard)' but it is in '\(actual)'")
                }
            }
        }
        self.files = files
        self.byName = byName
    }

    /// Reads `model.safetensors.index.json`: the shard files (in first-mention order) and the
    /// tensor → shard map. Throws `.badWeights` for malformed JSON or shard names that leave the
    /// directory.
    static func readIndex(_ path: String) throws(LlavaError) -> (files: [String], map: [(String, String)]) {
        let bytes = try readWholeFile(path, limit: 64 << 20)
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw LlavaError(.badWeights, "\(path): not valid JSON (\(error))")
        }
        guard let map = json["weight_map"]?.objectValue else {
            throw LlavaError(.badWeights, "\(path): no \"weight_map\" object")
        }
        var files: [String] = []
        var seenFiles = Set<String>()
        var seenNames = Set<String>()
        var pairs: [(String, String)] = []
        for (name, value) in map {
            guard let shard = value.stringValue, !shard.isEmpty else {
                throw LlavaError(.badWeights, "\(path): tensor '\(name)' maps to something other than a file name")
            }
            guard !shard.contains("/"), shard != ".", shard != ".." else {
                throw LlavaError(.badWeights, "\(path): shard name '\(shard)' must be a plain file name in the model directory")
            }
            guard seenNames.insert(name).inserted else {
                throw LlavaError(.badWeights, "\(path): tensor '\(name)' appears twice in weight_map")
            }
            if seenFiles.insert(shard).inserted { files.append(shard) }
            pairs.append((name, shard))
        }
        guard !files.isEmpty else { throw LlavaError(.badWeights, "\(path): weight_map is empty") }
        return (files, pairs)
    }

    /// Every tensor name, sorted.
    public var names: [String] { byName.keys.sorted() }

    /// Number of tensors.
    public var count: Int { byName.count }

    /// The tensor called `name`, unchecked, or nil.
    public subscript(name: String) -> TensorView? { byName[name] }

    public func contains(_ name: String) -> Bool { byName[name] != nil }

    /// The tensor called `name`, checked: it must exist (`.missingTensor`), have exactly `shape`
    /// when given (`.tensorMismatch`) and one of `dtypes` (`.tensorMismatch`).
    public func tensor(_ name: String, shape: [Int]? = nil,
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
    public var totalBytes: Int { byName.values.reduce(0) { $0 + $1.byteCount } }
}
