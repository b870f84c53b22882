extension CLIPVisionConfig {
    /// Where the LLaVA checkpoints keep the fine-tuned CLIP tower.
    package static let checkpointPrefix = "model.vision_tower.vision_tower.vision_model."

    /// Infers the CLIP tower's hyper-parameters from tensor shapes (the releases carry no CLIP
    /// config; docs/MODEL.md §2, fixtures README §1), under `prefix`:
    ///
    /// * layers: the `encoder.layers.N.` names, which must be exactly 0 ..< L (`.badWeights`
    ///   otherwise, `.missingTensor` if there are none);
    /// * width C: `embeddings.class_embedding` `[C]`; heads C/64 (OpenAI CLIP's head width 64);
    /// * MLP width: the rows of every layer's `mlp.fc1.weight` `[I, C]` (all layers agree);
    /// * patch size p: `embeddings.patch_embedding.weight` `[C, 3, p, p]`;
    /// * image size: `embeddings.position_embedding.weight` has `1 + (size/p)²` rows `[P, C]`;
    /// * quick_gelu activation and LayerNorm eps 1e-5 (fixed for OpenAI CLIP).
    ///
    /// `selectLayer` is config.json's `mm_vision_select_layer`, a Python-style index into the
    /// L + 1 hidden states; outside −(L+1) ... L it is `.badConfig`. Shapes that do not fit
    /// these rules are `.tensorMismatch`; a missing tensor is `.missingTensor`.
    package static func infer(from store: WeightStore, prefix: String = checkpointPrefix,
                             selectLayer: Int = -2) throws(LlavaError) -> CLIPVisionConfig {
        func mismatch(_ name: String, _ shape: [Int], _ expected: String) -> LlavaError {
            LlavaError(.tensorMismatch, "tensor '\(prefix + name)' has shape \(shape), expected \(expected)")
        }

        let classEmbedding = try store.tensor(prefix + "embeddings.class_embedding")
        guard classEmbedding.shape.count == 1, let width = classEmbedding.shape.first, width > 0 else {
            throw mismatch("embeddings.class_embedding", classEmbedding.shape, "[C] (the tower's width)")
        }
        guard width % 64 == 0 else {
            throw mismatch("embeddings.class_embedding", classEmbedding.shape, "a width that is a multiple of the head width 64")
        }

        let patch = try store.tensor(prefix + "embeddings.patch_embedding.weight")
        let ps = patch.shape
        guard ps.count == 4, ps[0] == width, ps[1] == 3, ps[2] == ps[3], ps[2] > 0 else {
            throw mismatch("embeddings.patch_embedding.weight", ps, "[\(width), 3, p, p]")
        }
        let patchSize = ps[2]

        let positions = try store.tensor(prefix + "embeddings.position_embedding.weight")
        let pos = positions.shape
        guard pos.count == 2, pos[1] == width, pos[0] >= 2 else {
            throw mismatch("embeddings.position_embedding.weight", pos, "[1 + side², \(width)]")
        }
        let side = integerSquareRoot(pos[0] - 1)
        guard side * side == pos[0] - 1 else {
            throw mismatch("embeddings.position_embedding.weight", pos,
                           "1 + a square number of rows (one CLS position and a square grid of patch positions)")
        }

        let layerCount = try encoderLayerCount(store, prefix: prefix)

        var intermediate = 0
        for i in 0..<layerCount {
            let name = "encoder.layers.\(i).mlp.fc1.weight"
            let fc1 = try store.tensor(prefix + name)
            guard fc1.shape.count == 2, fc1.shape[1] == width, fc1.shape[0] > 0,
                  i == 0 || fc1.shape[0] == intermediate else {
                throw mismatch(name, fc1.shape, i == 0 ? "[I, \(width)]" : "[\(intermediate), \(width)] like layer 0")
            }
            intermediate = fc1.shape[0]
        }

        guard (-(layerCount + 1)...layerCount).contains(selectLayer) else {
            throw LlavaError(.badConfig,
                             "config.json mm_vision_select_layer \(selectLayer) is outside the \(layerCount + 1) hidden states of the \(layerCount)-layer CLIP tower")
        }
        return CLIPVisionConfig(hiddenSize: width, layerCount: layerCount, headCount: width / 64,
                                intermediateSize: intermediate, patchSize: patchSize, imageSize: side * patchSize,
                                layerNormEps: 1e-5, selectLayer: selectLayer)
    }

    /// The number of encoder layers: the distinct N of `prefix + "encoder.layers.N."` names,
    /// which must be 0 ..< count, written in canonical decimal.
    static func encoderLayerCount(_ store: WeightStore, prefix: String) throws(LlavaError) -> Int {
        let layersPrefix = prefix + "encoder.layers."
        let skip = layersPrefix.utf8.count
        var found = Set<Int>()
        for name in store.names where name.hasPrefix(layersPrefix) {
            let rest = name.utf8.dropFirst(skip)
            let digits = rest.prefix(while: { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            let afterDigits = rest.dropFirst(digits.count)
            guard !digits.isEmpty, digits.count <= 6, afterDigits.first == UInt8(ascii: "."),
                  digits.count == 1 || digits.first != UInt8(ascii: "0") else {
                throw LlavaError(.badWeights, "tensor '\(name)' is not named \(layersPrefix)<layer number>.<parameter>")
            }
            found.insert(digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) })
        }
        guard !found.isEmpty else {
            throw LlavaError(.missingTensor, "no CLIP encoder layers: no tensor is named '\(layersPrefix)0.*'")
        }
        let sorted = found.sorted()
        guard sorted.last == sorted.count - 1 else {
            let missing = (0..<(sorted.last ?? 0)).first(where: { !found.contains($0) }) ?? 0
            throw LlavaError(.badWeights,
                             "CLIP encoder layers are not numbered 0..<\(sorted.count): '\(layersPrefix)' has \(sorted.count) layer numbers up to \(sorted.last ?? 0) and layer \(missing) is missing")
        }
        return sorted.count
    }

    /// ⌊√n⌋ for n ≥ 0, exact for any Int.
    static func integerSquareRoot(_ n: Int) -> Int {
        guard n > 0 else { return 0 }
        var r = Int(Double(n).squareRoot())
        while r * r > n { r -= 1 }
        while (r + 1) * (r + 1) <= n { r += 1 }
        return r
    }
}
