import CLlavaUHD

/// What a `luhd_model` handle points at: the model and the C strings
/// `luhd_model_get_properties` hands out.
final class ModelHandle: @unchecked Sendable {
    let model: LlavaModel
    let architecture, projector, tokenLayout, chatTemplate, weightDType, blasCore: OwnedCString

    init(_ model: LlavaModel) {
        self.model = model
        let c = model.vision?.config
        architecture = OwnedCString(model.languageConfig.architecture.rawValue)
        projector = OwnedCString(c?.projector.kind.rawValue ?? "")
        tokenLayout = OwnedCString(c?.imageTokenLayout.rawValue ?? "")
        chatTemplate = OwnedCString(model.chatTemplate?.rawValue ?? "")
        weightDType = OwnedCString(model.weights.predominantDType?.rawValue ?? model.languageGGUF.flatMap(Self.predominantType) ?? "")
        blasCore = OwnedCString(BLAS.coreName)
    }

    /// The GGML type holding most of a GGUF file's tensor bytes (e.g. "Q4_K").
    private static func predominantType(_ file: GGUFFile) -> String? {
        var bytes: [String: Int] = [:]
        for t in file.tensors { bytes["\(t.type)", default: 0] += t.byteCount }
        return bytes.max { $0.value < $1.value }?.key
    }
}

/// A C progress callback and its user data.
private struct CProgress: @unchecked Sendable {
    let callback: luhd_progress_callback
    let userData: UnsafeMutableRawPointer?
}

@_cdecl("luhd_model_default_params")
public func luhd_model_default_params() -> luhd_model_params {
    luhd_model_params(struct_size: MemoryLayout<luhd_model_params>.size, n_threads: 0,
                      progress_callback: nil, progress_user_data: nil, precision: LUHD_PRECISION_EXACT,
                      image_cache_bytes: Int64(LlavaModel.LoadOptions.defaultImageCacheBytes),
                      prefix_cache_bytes: Int64(LlavaModel.LoadOptions.defaultPrefixCacheBytes),
                      max_decode_batch: Int32(LlavaModel.LoadOptions.defaultMaxDecodeBatch), chat_template: nil)
}

@_cdecl("luhd_model_load")
public func luhd_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<luhd_model_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_model_load") { () throws(LlavaError) in
        let out = try nonNull(out, "out_model")
        let path = try stringArgument(path, "path")
        let p = try readParams(params, defaults: luhd_model_default_params(), name: "params")
        guard p.n_threads >= 0, p.n_threads <= maxThreads else {
            throw LlavaError(.invalidArgument, "params->n_threads is \(p.n_threads); it must be in 0...\(maxThreads)")
        }
        guard p.image_cache_bytes >= 0 else { throw LlavaError(.invalidArgument, "params->image_cache_bytes is \(p.image_cache_bytes); it must be at least 0") }
        guard p.prefix_cache_bytes >= 0 else {
            throw LlavaError(.invalidArgument, "params->prefix_cache_bytes is \(p.prefix_cache_bytes); it must be at least 0")
        }
        guard p.max_decode_batch >= 1, p.max_decode_batch <= maxDecodeBatch else {
            throw LlavaError(.invalidArgument, "params->max_decode_batch is \(p.max_decode_batch); it must be in 1...\(maxDecodeBatch)")
        }
        // Read as an integer: a C caller may store any int in the enum field.
        let rawPrecision = withUnsafeBytes(of: p.precision) { $0.load(as: Int32.self) }
        guard let precision = Precision(rawValue: rawPrecision) else {
            throw LlavaError(.invalidArgument, "params->precision is \(rawPrecision); use LUHD_PRECISION_EXACT or LUHD_PRECISION_FAST")
        }
        let chatTemplate = try p.chat_template.map { (name) throws(LlavaError) in
            try ChatTemplateKind.named(try stringArgument(name, "params->chat_template"), option: "params->chat_template")
        }
        var options = LlavaModel.LoadOptions(threads: p.n_threads == 0 ? ComputeContext.defaultThreads : Int(p.n_threads),
                                             matrixArithmetic: precision.matrixArithmetic(),
                                             visionArithmetic: precision.visionArithmetic(),
                                             imageCacheBytes: Int(p.image_cache_bytes),
                                             chatTemplate: chatTemplate, prefixCacheBytes: Int(p.prefix_cache_bytes),
                                             maxDecodeBatch: Int(p.max_decode_batch))
        if let callback = p.progress_callback {
            let c = CProgress(callback: callback, userData: p.progress_user_data)
            options.progress = { c.callback(Float($0), c.userData) }
        }
        let start = monotonicSeconds()
        let model = try LlavaModel(path: path, options: options)
        let c = model.languageConfig
        Log.info("loaded \(path): \(c.architecture.rawValue), \(c.layerCount) layers, hidden \(c.hiddenSize), "
                 + "\(model.hasVision ? "" : "text-only, ")\(model.tensorCount) tensors, \(model.tensorBytes) bytes, \(model.threads) threads, "
                 + "BLAS core \(BLAS.coreName), in \(monotonicSeconds() - start) s")
        out.pointee = retainedHandle(ModelHandle(model))
    }
}

@_cdecl("luhd_model_free")
public func luhd_model_free(_ handle: OpaquePointer?) {
    releaseHandle(handle, as: ModelHandle.self)
}

/// The most compute threads a caller may ask for (`luhd_model_params.n_threads`).
private let maxThreads: Int32 = 1024
/// The largest `max_decode_batch` accepted.
private let maxDecodeBatch = Int32(LlavaModel.LoadOptions.largestMaxDecodeBatch)

@_cdecl("luhd_model_get_properties")
public func luhd_model_get_properties(_ handle: OpaquePointer?,
                                      _ out: UnsafeMutablePointer<luhd_model_properties>?) -> luhd_status {
    cCall("luhd_model_get_properties") { () throws(LlavaError) in
        let h = try object(handle, as: ModelHandle.self, "model")
        let out = try nonNull(out, "out")
        let given = try outputStructSize(out.pointee.struct_size, "out", "luhd_model_properties")
        let m = h.model, lm = m.languageConfig, v = m.vision?.clip, pc = m.vision?.config.projector
        var info = luhd_model_properties()
        info.struct_size = given
        info.architecture = UnsafePointer(h.architecture.pointer)
        info.projector = UnsafePointer(h.projector.pointer)
        info.token_layout = UnsafePointer(h.tokenLayout.pointer)
        info.chat_template = UnsafePointer(h.chatTemplate.pointer)
        info.weight_dtype = UnsafePointer(h.weightDType.pointer)
        info.blas_core = UnsafePointer(h.blasCore.pointer)
        info.n_threads = try int32Field(m.threads, "n_threads")
        info.hidden_size = try int32Field(lm.hiddenSize, "hidden_size")
        info.intermediate_size = try int32Field(lm.intermediateSize, "intermediate_size")
        info.n_layers = try int32Field(lm.layerCount, "n_layers")
        info.n_heads = try int32Field(lm.headCount, "n_heads")
        info.n_kv_heads = try int32Field(lm.kvHeadCount, "n_kv_heads")
        info.vocab_size = try int32Field(lm.vocabSize, "vocab_size")
        info.max_position_embeddings = try int32Field(lm.maxPositionEmbeddings, "max_position_embeddings")
        info.vision_hidden_size = try int32Field(v?.hiddenSize ?? 0, "vision_hidden_size")
        info.vision_intermediate_size = try int32Field(v?.intermediateSize ?? 0, "vision_intermediate_size")
        info.vision_n_layers = try int32Field(v?.layerCount ?? 0, "vision_n_layers")
        info.vision_n_heads = try int32Field(v?.headCount ?? 0, "vision_n_heads")
        info.vision_patch_size = try int32Field(v?.patchSize ?? 0, "vision_patch_size")
        info.vision_image_size = try int32Field(v?.imageSize ?? 0, "vision_image_size")
        info.vision_select_layer = try int32Field(v?.selectLayer ?? 0, "vision_select_layer")
        info.feature_scale_mask = try int32Field(pc.map { $0.kind == .hiwin ? $0.featureScaleMask : 0 } ?? 0, "feature_scale_mask")
        info.tokens_per_view = try int32Field(pc?.tokensPerView ?? 0, "tokens_per_view")
        info.n_tensors = Int64(m.tensorCount)
        info.weight_bytes = Int64(m.tensorBytes)
        info.has_vision = m.hasVision
        writeOutputStruct(info, to: out, size: given)
    }
}
