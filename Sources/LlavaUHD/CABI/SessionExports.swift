import CLlavaUHD
import Synchronization

/// What a `luhd_session` handle points at: the session, the logits array handed out by
/// `luhd_session_logits` (valid until the next call on the session), and the flag that turns
/// an overlapping call into a status instead of a data race.
final class SessionHandle: @unchecked Sendable {
    let session: ChatSession
    var logits: [Float] = []
    private let busy = Atomic<Bool>(false)
    init(_ session: ChatSession) { self.session = session }

    /// Runs `body` as the session's one call in progress; a call that overlaps it (another
    /// thread, or a callback of the running call) is refused.
    func exclusive<R>(_ body: (ChatSession) throws(LlavaError) -> R) throws(LlavaError) -> R {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw LlavaError(.invalidArgument, "the session is busy with another call: a session is used by one "
                             + "thread at a time, and its callbacks may only call luhd_session_cancel or luhd_session_free on it")
        }
        defer { busy.store(false, ordering: .releasing) }
        return try body(session)
    }
}

/// The session behind a handle, for one exclusive call.
func withSession<R>(_ handle: OpaquePointer?, _ body: (SessionHandle, ChatSession) throws(LlavaError) -> R)
    throws(LlavaError) -> R {
    let h = try object(handle, as: SessionHandle.self, "session")
    return try h.exclusive { (s) throws(LlavaError) in try body(h, s) }
}

@_cdecl("luhd_session_default_params")
public func luhd_session_default_params() -> luhd_session_params {
    let slicing = luhd_slice_default_params()
    return luhd_session_params(struct_size: MemoryLayout<luhd_session_params>.size, n_ctx: 0, image_cache_size: 4,
                               system_prompt: nil, preresize_long_side: slicing.preresize_long_side,
                               max_slices: slicing.max_slices, abort_callback: nil, abort_user_data: nil,
                               kv_type: luhd_kv_type(rawValue: UInt32(KVCacheType.sessionDefault.rawValue)))
}

@_cdecl("luhd_session_create")
public func luhd_session_create(_ model: OpaquePointer?, _ params: UnsafePointer<luhd_session_params>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_session_create") { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let out = try nonNull(out, "out_session")
        out.pointee = retainedHandle(SessionHandle(try ChatSession(model: m, options: sessionOptions(params, model: m))))
    }
}

/// The session options of a C params struct (nil: defaults), every field checked and named.
func sessionOptions(_ params: UnsafePointer<luhd_session_params>?, model m: LlavaModel) throws(LlavaError) -> ChatSession.Options {
    let p = try readParams(params, defaults: luhd_session_default_params(), name: "params")
    let maxPositions = m.languageConfig.maxPositionEmbeddings
    guard p.n_ctx >= 0, Int(p.n_ctx) <= maxPositions else {
        throw LlavaError(.invalidArgument,
                         "params->n_ctx is \(p.n_ctx); it must be in 0...\(maxPositions) (0 = min(4096, max_position_embeddings))")
    }
    guard p.image_cache_size >= 0 else {
        throw LlavaError(.invalidArgument, "params->image_cache_size is \(p.image_cache_size); it must be 0 or more")
    }
    var options = ChatSession.Options()
    options.contextLength = Int(p.n_ctx)
    options.imageCacheCapacity = Int(p.image_cache_size)
    guard let kvType = KVCacheType(rawValue: Int32(truncatingIfNeeded: p.kv_type.rawValue)),
          UInt64(p.kv_type.rawValue) == UInt64(kvType.rawValue) else {
        throw LlavaError(.invalidArgument, "params->kv_type \(p.kv_type.rawValue) is not a luhd_kv_type")
    }
    options.kvCacheType = kvType
    if let system = p.system_prompt {
        guard let s = String(validatingCString: system) else {
            throw LlavaError(.invalidUTF8, "params->system_prompt is not valid UTF-8")
        }
        options.systemPrompt = s
    }
    options.slicing = try slicingOptions(preresizeLongSide: p.preresize_long_side, maxSlices: p.max_slices,
                                         prefix: "params->")
    if let callback = p.abort_callback {
        let abort = CAbort(callback: callback, userData: p.abort_user_data)
        options.shouldAbort = { abort() }
    }
    return options
}

@_cdecl("luhd_session_reset")
public func luhd_session_reset(_ handle: OpaquePointer?) -> luhd_status {
    cCall("luhd_session_reset") { () throws(LlavaError) in
        try withSession(handle) { (_, s) throws(LlavaError) in s.reset() }
    }
}

@_cdecl("luhd_session_free")
public func luhd_session_free(_ handle: OpaquePointer?) {
    guard let handle else { return }
    // From inside a callback of a running call, that call holds its own reference to the
    // session: cancelling it makes it return soon, and the memory goes when it does.
    Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue().session.cancellation.cancel()
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
        try withSession(handle) { (_, s) throws(LlavaError) in
            used?.pointee = try int32Field(s.position, "n_used")
            total?.pointee = try int32Field(s.contextLength, "n_ctx")
        }
    }
}

@_cdecl("luhd_sampling_default_params")
public func luhd_sampling_default_params() -> luhd_sampling_params {
    luhd_sampling_params(struct_size: MemoryLayout<luhd_sampling_params>.size, temperature: 0, top_k: 0, top_p: 1,
                         min_p: 0, repetition_penalty: 1, penalty_last_n: 0, seed: 0, max_new_tokens: 128,
                         stop_strings: nil, n_stop_strings: 0)
}

/// Chat parameters from a C sampling struct (nil: defaults), every field checked and named.
private func chatParameters(_ p: UnsafePointer<luhd_sampling_params>?) throws(LlavaError) -> ChatParameters {
    let s = try readParams(p, defaults: luhd_sampling_default_params(), name: "sampling")
    guard s.max_new_tokens >= 0 else {
        throw LlavaError(.invalidArgument, "sampling->max_new_tokens is \(s.max_new_tokens); it must be 0 or more")
    }
    guard s.n_stop_strings >= 0 else {
        throw LlavaError(.invalidArgument, "sampling->n_stop_strings is \(s.n_stop_strings); it must be 0 or more")
    }
    var stops: [String] = []
    if s.n_stop_strings > 0 {
        let list = try nonNull(s.stop_strings, "sampling->stop_strings")
        for i in 0..<Int(s.n_stop_strings) {
            guard let entry = list[i] else { throw LlavaError(.invalidArgument, "sampling->stop_strings[\(i)] is NULL") }
            guard let text = String(validatingCString: entry) else {
                throw LlavaError(.invalidUTF8, "sampling->stop_strings[\(i)] is not valid UTF-8")
            }
            stops.append(text)
        }
    }
    let sampling = SamplingParameters(temperature: s.temperature, topK: Int(s.top_k), topP: s.top_p, minP: s.min_p,
                                      repetitionPenalty: s.repetition_penalty, penaltyWindow: Int(s.penalty_last_n),
                                      seed: s.seed)
    do {
        try sampling.validate()
    } catch {
        throw LlavaError(error.status, "sampling: \(error.message)")
    }
    return ChatParameters(generation: GenerationParameters(maxNewTokens: Int(s.max_new_tokens), sampling: sampling),
                          stopStrings: stops)
}

/// The images of a C array (NULL entries rejected).
private func images(_ list: UnsafePointer<OpaquePointer?>?, _ count: Int32) throws(LlavaError) -> [RGBImage] {
    guard count >= 0 else { throw LlavaError(.invalidArgument, "n_images is \(count); it must be 0 or more") }
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
public func luhd_session_chat(_ handle: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ textLength: Int64,
                              _ imageList: UnsafePointer<OpaquePointer?>?, _ nImages: Int32,
                              _ sampling: UnsafePointer<luhd_sampling_params>?, _ onText: luhd_text_callback?,
                              _ userData: UnsafeMutableRawPointer?,
                              _ outText: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                              _ outTextLength: UnsafeMutablePointer<Int>?,
                              _ stats: UnsafeMutablePointer<luhd_chat_stats>?) -> luhd_status {
    cCall("luhd_session_chat") { () throws(LlavaError) in
        try withSession(handle) { (_, s) throws(LlavaError) in
            let text = try textArgument(text, length: textLength, "text")
            let parameters = try chatParameters(sampling)
            let imgs = try images(imageList, nImages)
            let statsSize = try stats.map { (s) throws(LlavaError) in
                try outputStructSize(s.pointee.struct_size, "out_stats", "luhd_chat_stats")
            }
            let reply = try s.chat(text, images: imgs, parameters: parameters) { piece in
                guard let onText else { return true }
                // withCString gives every byte (NULs inside the piece included) and a NUL after them.
                return piece.withCString { onText($0, piece.utf8.count, userData) }
            }
            if let outText {
                outText.pointee = copyCString(bytes: Array(reply.text.utf8))
                outTextLength?.pointee = reply.text.utf8.count
            }
            if let stats, let statsSize {
                var st = luhd_chat_stats()
                st.struct_size = statsSize
                st.stop_reason = luhd_stop_reason(rawValue: UInt32(reply.stopReason.rawValue))
                st.n_prompt_positions = try int32Field(reply.promptPositions, "n_prompt_positions")
                st.n_reused_positions = try int32Field(reply.reusedPositions, "n_reused_positions")
                st.n_generated = try int32Field(reply.tokens.count, "n_generated")
                st.n_images_encoded = try int32Field(reply.timings.encodedImages, "n_images_encoded")
                st.n_images_cached = try int32Field(reply.timings.cachedImages, "n_images_cached")
                st.image_seconds = reply.timings.imageEncoding
                st.prefill_seconds = reply.timings.prefill
                st.decode_seconds = reply.timings.decode
                writeOutputStruct(st, to: stats, size: statsSize)
            }
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
        try withSession(handle) { (_, s) throws(LlavaError) in
            guard nTokens >= 1 else { throw LlavaError(.invalidArgument, "n_tokens is \(nTokens); at least 1 is needed") }
            let ids = UnsafeBufferPointer(start: try nonNull(tokens, "tokens"), count: Int(nTokens)).map(Int.init)
            let vocab = s.model.languageConfig.vocabSize
            if let bad = ids.firstIndex(where: { $0 != MultimodalInput.imageMarker && ($0 < 0 || $0 >= vocab) }) {
                throw LlavaError(.invalidArgument, "tokens[\(bad)] = \(ids[bad]) is outside the vocabulary (0..<\(vocab))")
            }
            try s.eval(tokens: ids, images: images(imageList, nImages))
        }
    }
}

@_cdecl("luhd_session_logits")
public func luhd_session_logits(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<Float>?>?,
                                _ nVocab: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_session_logits") { () throws(LlavaError) in
        try withSession(handle) { (h, s) throws(LlavaError) in
            let out = try nonNull(out, "out_logits")
            guard let logits = s.logits else {
                throw LlavaError(.invalidArgument, "no logits: nothing has been evaluated since the session started or "
                                 + "was reset, or the last chat failed after it had started evaluating")
            }
            let count = try int32Field(logits.count, "n_vocab")
            h.logits = logits
            // The array is owned by the handle and not mutated until the next call, so its storage is stable.
            out.pointee = h.logits.withUnsafeBufferPointer { $0.baseAddress }
            nVocab?.pointee = count
        }
    }
}

@_cdecl("luhd_session_sample")
public func luhd_session_sample(_ handle: OpaquePointer?, _ sampling: UnsafePointer<luhd_sampling_params>?,
                                _ out: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_session_sample") { () throws(LlavaError) in
        try withSession(handle) { (_, s) throws(LlavaError) in
            let out = try nonNull(out, "out_token")
            out.pointee = try int32Field(try s.sample(chatParameters(sampling).generation.sampling), "token")
        }
    }
}
