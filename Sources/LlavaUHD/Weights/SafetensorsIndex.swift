/// A parsed `model.safetensors.index.json`: which shard file holds each tensor.
///
/// The file is `{"metadata": {...}, "weight_map": {tensor name: shard file name}}`. Shard names
/// must be plain file names ending in `.safetensors` inside the model directory: no `/`, no
/// `.`/`..`, no NUL byte, so an index cannot make the loader open anything outside the
/// directory. `metadata` (e.g. `total_size`) is not used.
package struct SafetensorsIndex: Sendable, Equatable {
    /// The shard file names, in order of first mention.
    package let shards: [String]
    /// Tensor name → shard file name, in file order.
    package let weightMap: [(tensor: String, shard: String)]

    /// Largest index file accepted (the Vicuna-7B release's index is 134 kB).
    package static let maxBytes = 64 << 20

    /// Reads and validates the index at `path`. Throws `.io` when it cannot be read and
    /// `.badWeights` (naming the file) when it is not JSON, has no `weight_map` object, names
    /// a tensor twice, maps a tensor to something other than a plain shard file name, or is
    /// empty.
    package init(path: String) throws(LlavaError) {
        let bytes = try readWholeFile(path, limit: Self.maxBytes)
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw LlavaError(.badWeights, "\(path): not valid JSON (\(error))")
        }
        try self.init(json: json, source: path)
    }

    /// Validates an already parsed index; `source` names it in messages.
    package init(json: JSONValue, source: String) throws(LlavaError) {
        func bad(_ what: String) -> LlavaError { LlavaError(.badWeights, "\(source): \(what)") }
        guard case .object = json else { throw bad("the index is not a JSON object") }
        guard let map = json["weight_map"]?.objectValue else { throw bad("no \"weight_map\" object") }
        var shards: [String] = []
        var seenShards = Set<String>()
        var seenNames = Set<String>()
        var pairs: [(tensor: String, shard: String)] = []
        pairs.reserveCapacity(map.count)
        for (name, value) in map {
            guard let shard = value.stringValue else {
                throw bad("tensor '\(name)' maps to something other than a file name")
            }
            guard Self.isPlainShardName(shard) else {
                throw bad("shard name '\(shard)' for tensor '\(name)' must be a plain *.safetensors file name in the model directory")
            }
            guard seenNames.insert(name).inserted else { throw bad("tensor '\(name)' appears twice in weight_map") }
            if seenShards.insert(shard).inserted { shards.append(shard) }
            pairs.append((name, shard))
        }
        guard !shards.isEmpty else { throw bad("weight_map is empty") }
        self.shards = shards
        self.weightMap = pairs
    }

    /// True for a non-empty file name without `/` or NUL, other than `.`/`..`, that ends in
    /// `.safetensors`.
    static func isPlainShardName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        let suffix = Array(".safetensors".utf8)
        guard u.count > suffix.count, !u.contains(UInt8(ascii: "/")), !u.contains(0) else { return false }
        return Array(u[(u.count - suffix.count)...]) == suffix
    }

    package static func == (a: SafetensorsIndex, b: SafetensorsIndex) -> Bool {
        a.shards == b.shards && a.weightMap.elementsEqual(b.weightMap, by: { $0 == $1 })
    }
}
