import CLlavaUHD

/// What a `luhd_model` handle points at: the model and the C strings `luhd_model_info` hands out.
final class ModelHandle: @unchecked Sendable {
    let model: LlavaModel
    let architecture, projector, tokenLayout, chatTemplate, weightDType, blasCore: OwnedCString

    init(_ model: LlavaModel) {
        self.model = model
        let c = model.vision?.config
        architecture = OwnedCString(model.languageConfig.architecture.rawValue)
        projector = OwnedCString(c.map { $0.projector.kind == .hiwin ? "hiwin" : "uhd_v1" } ?? "")
        tokenLayout = OwnedCString(c.map { $0.imageTokenLayout == .stitchedGrid ? "stitched_grid" : "per_slice" } ?? "")
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
                      progress_callback: nil, progress_user_data: nil, bf16_matmul: false)
}

@_cdecl("luhd_model_load")
public func luhd_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<luhd_model_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_model_load") { () throws(LlavaError) in
        let out = try nonNull(out, "out_model")
        let path = try stringArgument(path, "path")
        let p = try readParams(params, defaults: luhd_model_default_params(), name: "params")
        guard p.n_threads >= 0 else { throw LlavaError(.invalidArgument, "params->n_threads is negative") }
        var options = LlavaModel.LoadOptions(threads: p.n_threads == 0 ? ComputeContext.defaultThreads : Int(p.n_threads),
                                             matrixArithmetic: p.bf16_matmul ? .bfloat16 : .float32)
        if let callback = p.progress_callback {
            let c = CProgress(callback: callback, userData: p.progress_user_data)
            options.progress = { c.callback(Float($0), c.userData) }
        }
        let start = monotonicSeconds()
        let model = try LlavaModel(path: path, options: options)
        let c = model.languageConfig
        Log.info("loaded \(path): \(c.architecture.rawValue), \(c.layerCount) layers, hidden \(c.hiddenSize), "
                 + "\(model.vision == nil ? "text-only, " : "")\(model.tensorCount) tensors, \(model.tensorBytes) bytes, \(model.threads) threads, "
                 + "BLAS core \(BLAS.coreName), in \(monotonicSeconds() - start) s")
        out.pointee = retainedHandle(ModelHandle(model))
    }
}

@_cdecl("luhd_model_free")
public func luhd_model_free(_ handle: OpaquePointer?) {
    releaseHandle(handle, as: ModelHandle.self)
}

@_cdecl("luhd_model_info")
public func luhd_model_info(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<luhd_model_properties>?) -> luhd_status {
    cCall("luhd_model_info") { () throws(LlavaError) in
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
        info.n_threads = Int32(m.threads)
        info.hidden_size = Int32(lm.hiddenSize)
        info.intermediate_size = Int32(lm.intermediateSize)
        info.n_layers = Int32(lm.layerCount)
        info.n_heads = Int32(lm.headCount)
        info.n_kv_heads = Int32(lm.kvHeadCount)
        info.vocab_size = Int32(lm.vocabSize)
        info.max_position_embeddings = Int32(lm.maxPositionEmbeddings)
        info.vision_hidden_size = Int32(v?.hiddenSize ?? 0)
        info.vision_intermediate_size = Int32(v?.intermediateSize ?? 0)
        info.vision_n_layers = Int32(v?.layerCount ?? 0)
        info.vision_n_heads = Int32(v?.headCount ?? 0)
        info.vision_patch_size = Int32(v?.patchSize ?? 0)
        info.vision_image_size = Int32(v?.imageSize ?? 0)
        info.vision_select_layer = Int32(v?.selectLayer ?? 0)
        info.feature_scale_mask = Int32(pc.map { $0.kind == .hiwin ? $0.featureScaleMask : 0 } ?? 0)
        info.tokens_per_view = Int32(pc?.tokensPerView ?? 0)
        info.n_tensors = Int64(m.tensorCount)
        info.weight_bytes = Int64(m.tensorBytes)
        info.has_vision = m.vision != nil
        writeOutputStruct(info, to: out, size: given)
    }
}
