/// The identity of a model for the files a session saves (`SessionFile`): a saved KV cache is
/// only meaningful with the weights that computed it.
extension LlavaModel {
    /// Version tag of the digest's definition, part of the hashed bytes.
    static let digestDefinition = "llavauhd model digest 2"

    /// SHA-256 of: `digestDefinition`; the LLM's hyper-parameters (architecture, sizes, layer and
    /// head counts, vocabulary, max positions, RMS epsilon, RoPE theta), the chat template and the
    /// image-token layout ("" when a text-only model has none); the tokenizer (its special ids,
    /// whether it adds BOS, and every id's vocabulary string and special flag: saved token ids
    /// only mean the same text with the same vocabulary); then for every tensor of the weight files (sorted by name) and of the
    /// GGUF LLM file when there is one (in file order): its name, dtype, shape, and its first and
    /// last 256 bytes. Cheap (a few hundred kilobytes hashed, two pages read per tensor) and it
    /// tells checkpoints apart: fine-tunes of one architecture share names and shapes but not
    /// bytes. It does not prove two models equal byte for byte; a model rewritten with the same
    /// sampled bytes but other weights in between would share the digest. Computed once.
    package var digest: [UInt8] {
        digestMemo.withLock { memo in
            if let memo { return memo }
            let d = computeDigest()
            memo = d
            return d
        }
    }

    private func computeDigest() -> [UInt8] {
        var w = BinaryWriter()
        w.string(Self.digestDefinition)
        let c = languageConfig
        w.string(c.architecture.rawValue)
        for v in [c.hiddenSize, c.intermediateSize, c.layerCount, c.headCount, c.kvHeadCount, c.vocabSize,
                  c.maxPositionEmbeddings] { w.i64(v) }
        w.f32(c.rmsNormEps)
        w.f32(c.ropeTheta)
        w.string(chatTemplate?.rawValue ?? "")
        w.string(vision?.config.imageTokenLayout.rawValue ?? "")
        w.i64(tokenizer.vocabularySize)
        for id in [tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.unknownTokenId, tokenizer.padTokenId] {
            w.i64(id.map(Int.init) ?? -1)
        }
        w.u8(tokenizer.addsBOSByDefault ? 1 : 0)
        for id in 0..<Int32(clamping: tokenizer.vocabularySize) {
            w.string(tokenizer.token(forId: id) ?? "")
            w.u8(tokenizer.isSpecialToken(id) ? 1 : 0)
        }
        func tensor(name: String, type: String, shape: [Int], bytes: UnsafeRawBufferPointer) {
            w.string(name)
            w.string(type)
            w.i64(shape.count)
            for d in shape { w.i64(d) }
            let n = min(256, bytes.count)
            w.raw(Array(bytes.prefix(n)))
            w.raw(Array(bytes.suffix(n)))
        }
        for name in weights.names {
            guard let t = weights[name] else { continue }
            tensor(name: name, type: t.dtype.rawValue, shape: t.shape, bytes: t.bytes)
        }
        if let gguf = languageGGUF, let base = gguf.file.base {
            for info in gguf.tensors {
                tensor(name: info.name, type: info.type.name, shape: info.shape,
                       bytes: UnsafeRawBufferPointer(start: base + info.fileOffset, count: info.byteCount))
            }
        }
        return SHA256.digest(w.bytes)
    }
}
