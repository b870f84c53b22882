import CLlavaUHD

/// What a `luhd_session` handle points at: the session, and the logits array handed out by
/// `luhd_session_logits` (valid until the next call on the session).
final class SessionHandle: @unchecked Sendable {
    let session: ChatSession
    var logits: [Float] = []
    init(_ session: ChatSession) { self.session = session }
}

@_cdecl("luhd_session_default_params")
public func luhd_session_default_params() -> luhd_session_params {
    luhd_session_params(struct_size: MemoryLayout<luhd_session_params>.size, n_ctx: 0, image_cache_size: 4,
                        system_prompt: nil, image_options: luhd_image_default_options(),
                        abort_callback: nil, abort_user_data: nil)
}

@_cdecl("luhd_session_create")
public func luhd_session_create(_ model: OpaquePointer?, _ params: UnsafePointer<luhd_session_params>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_session_create") { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let out = try nonNull(out, "out_session")
        let p = try readParams(params, defaults: luhd_session_default_params(), name: "params")
        var options = ChatSession.Options()
        options.contextLength = Int(p.n_ctx)
        options.imageCacheCapacity = Int(p.image_cache_size)
        if let system = p.system_prompt {
            guard let s = String(validatingCString: system) else {
                throw LlavaError(.invalidUTF8, "params->system_prompt is not valid UTF-8")
            }
            options.systemPrompt = s
        }
        var imageOptions = p.image_options
        if imageOptions.struct_size == 0 { imageOptions = luhd_image_default_options() }
        options.slicing = try slicingOptions(imageOptions)
        if let callback = p.abort_callback {
            let abort = CAbort(callback: callback, userData: p.abort_user_data)
            options.shouldAbort = { abort() }
        }
        out.pointee = retainedHandle(SessionHandle(try ChatSession(model: m, options: options)))
    }
}

@_cdecl("luhd_session_reset")
public func luhd_session_reset(_ handle: OpaquePointer?) -> luhd_status {
    cCall("luhd_session_reset") { () throws(LlavaError) in
        try object(handle, as: SessionHandle.self, "session").session.reset()
    }
}

@_cdecl("luhd_session_free")
public func luhd_session_free(_ handle: OpaquePointer?) {
    releaseHandle(handle, as: SessionHandle.self)
}

@_cdecl("luhd_session_cancel")
public func luhd_session_cancel(_ handle: OpaquePointer?) -> luhd_status {
    cCall("luhd_session_cancel") { () throws(LlavaError) in
        try object(handle, as: SessionHandle.self, "session").session.cancellation.cancel()
    }
}

@_cdecl("luhd_session_context")
public func luhd_session_context(_ handle: OpaquePointer?, _ used: UnsafeMutablePointer<Int32>?,
                                 _ total: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_session_context") { () throws(LlavaError) in
        let s = try object(handle, as: SessionHandle.self, "session").session
        used?.pointee = Int32(s.position)
        total?.pointee = Int32(s.contextLength)
    }
}

@_cdecl("luhd_sampling_default_params")
public func luhd_sampling_default_params() -> luhd_sampling_params {
    luhd_sampling_params(struct_size: MemoryLayout<luhd_sampling_params>.size, temperature: 0, top_k: 0, top_p: 1,
                         min_p: 0, repetition_penalty: 1, penalty_last_n: 0, seed: 0, max_new_tokens: 128,
                         stop_strings: nil, n_stop_strings: 0)
}

/// Chat parameters from a C sampling struct (nil: defaults).
private func chatParameters(_ p: UnsafePointer<luhd_sampling_params>?) throws(LlavaError) -> ChatParameters {
    let s = try readParams(p, defaults: luhd_sampling_default_params(), name: "sampling")
    guard s.max_new_tokens >= 0 else { throw LlavaError(.invalidArgument, "sampling->max_new_tokens is negative") }
    guard s.n_stop_strings >= 0 else { throw LlavaError(.invalidArgument, "sampling->n_stop_strings is negative") }
    var stops: [String] = []
    if s.n_stop_strings > 0 {
        let list = try nonNull(s.stop_strings, "sampling->stop_strings")
        for i in 0..<Int(s.n_stop_strings) {
            stops.append(try stringArgument(list[i], "sampling->stop_strings[i]"))
        }
    }
    let sampling = SamplingParameters(temperature: s.temperature, topK: Int(s.top_k), topP: s.top_p, minP: s.min_p,
                                      repetitionPenalty: s.repetition_penalty, penaltyWindow: Int(s.penalty_last_n),
                                      seed: s.seed)
    try sampling.validate()
    return ChatParameters(generation: GenerationParameters(maxNewTokens: Int(s.max_new_tokens), sampling: sampling),
                          stopStrings: stops)
}

/// The images of a C array (NULL entries rejected).
private func images(_ list: UnsafePointer<OpaquePointer?>?, _ count: Int32) throws(LlavaError) -> [RGBImage] {
    guard count >= 0 else { throw LlavaError(.invalidArgument, "n_images is negative") }
    guard count > 0 else { return [] }
    let list = try nonNull(list, "images")
    var out: [RGBImage] = []
    for i in 0..<Int(count) {
        guard let h = list[i] else { throw LlavaError(.invalidArgument, "images[\(i)] is NULL") }
        out.append(try object(h, as: ImageHandle.self, "images[i]").image)
    }
    return out
}

@_cdecl("luhd_session_chat")
public func luhd_session_chat(_ handle: OpaquePointer?, _ text: UnsafePointer<CChar>?,
                              _ imageList: UnsafePointer<OpaquePointer?>?, _ nImages: Int32,
                              _ sampling: UnsafePointer<luhd_sampling_params>?, _ onText: luhd_text_callback?,
                              _ userData: UnsafeMutableRawPointer?, _ outText: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                              _ stats: UnsafeMutablePointer<luhd_chat_stats>?) -> luhd_status {
    cCall("luhd_session_chat") { () throws(LlavaError) in
        let s = try object(handle, as: SessionHandle.self, "session").session
        let text = try stringArgument(text, "text")
        let parameters = try chatParameters(sampling)
        let imgs = try images(imageList, nImages)
        let statsSize = try stats.map { (s) throws(LlavaError) in
            try outputStructSize(s.pointee.struct_size, "stats", "luhd_chat_stats")
        }
        let reply = try s.chat(text, images: imgs, parameters: parameters) { piece in
            guard let onText else { return true }
            return piece.withCString { onText($0, piece.utf8.count, userData) }
        }
        if let outText { outText.pointee = strdupSwift(reply.text) }
        if let stats, let statsSize {
            var st = luhd_chat_stats()
            st.struct_size = statsSize
            st.stop_reason = luhd_stop_reason(rawValue: UInt32(reply.stopReason.rawValue))
            st.n_prompt_positions = Int32(reply.promptPositions)
            st.n_reused_positions = Int32(reply.reusedPositions)
            st.n_generated = Int32(reply.tokens.count)
            st.n_images_encoded = Int32(reply.timings.encodedImages)
            st.n_images_cached = Int32(reply.timings.cachedImages)
            st.image_seconds = reply.timings.imageEncoding
            st.prefill_seconds = reply.timings.prefill
            st.decode_seconds = reply.timings.decode
            writeOutputStruct(st, to: stats, size: statsSize)
        }
    }
}

@_cdecl("luhd_string_free")
public func luhd_string_free(_ string: UnsafeMutablePointer<CChar>?) {
    string?.deallocate()
}

@_cdecl("luhd_session_eval")
public func luhd_session_eval(_ handle: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ nTokens: Int32,
                              _ imageList: UnsafePointer<OpaquePointer?>?, _ nImages: Int32) -> luhd_status {
    cCall("luhd_session_eval") { () throws(LlavaError) in
        let s = try object(handle, as: SessionHandle.self, "session").session
        guard nTokens >= 1 else { throw LlavaError(.invalidArgument, "n_tokens is \(nTokens); at least 1 is needed") }
        let ids = UnsafeBufferPointer(start: try nonNull(tokens, "tokens"), count: Int(nTokens)).map(Int.init)
        let vocab = s.model.languageConfig.vocabSize
        if let bad = ids.firstIndex(where: { $0 != MultimodalInput.imageMarker && ($0 < 0 || $0 >= vocab) }) {
            throw LlavaError(.invalidArgument, "tokens[\(bad)] = \(ids[bad]) is outside the vocabulary (0..<\(vocab))")
        }
        try s.eval(tokens: ids, images: images(imageList, nImages))
    }
}

@_cdecl("luhd_session_logits")
public func luhd_session_logits(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                                _ nVocab: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_session_logits") { () throws(LlavaError) in
        let h = try object(handle, as: SessionHandle.self, "session")
        let out = try nonNull(out, "out_logits")
        guard let logits = h.session.logits else {
            throw LlavaError(.invalidArgument, "no logits: nothing has been evaluated since the session started or was reset")
        }
        h.logits = logits
        // The array is owned by the handle and not mutated until the next call, so its storage is stable.
        out.pointee = h.logits.withUnsafeBufferPointer { $0.baseAddress }
        nVocab?.pointee = Int32(logits.count)
    }
}

@_cdecl("luhd_session_sample")
public func luhd_session_sample(_ handle: OpaquePointer?, _ sampling: UnsafePointer<luhd_sampling_params>?,
                                _ out: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_session_sample") { () throws(LlavaError) in
        let s = try object(handle, as: SessionHandle.self, "session").session
        let out = try nonNull(out, "out_token")
        out.pointee = Int32(try s.sample(chatParameters(sampling).generation.sampling))
    }
}
