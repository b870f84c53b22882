import CLlavaUHD

// luhd_session_save and luhd_session_load: saved sessions (`SessionFile`).

@_cdecl("luhd_session_save")
public func luhd_session_save(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> luhd_status {
    cCall("luhd_session_save") { () throws(LlavaError) in
        let path = try stringArgument(path, "path")
        try withSession(handle) { (_, s) throws(LlavaError) in try SessionFile.save(s, to: path) }
    }
}

@_cdecl("luhd_session_load")
public func luhd_session_load(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                              _ params: UnsafePointer<luhd_session_params>?,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_session_load") { () throws(LlavaError) in
        let m = try object(model, as: ModelHandle.self, "model").model
        let path = try stringArgument(path, "path")
        let out = try nonNull(out, "out_session")
        let session = try SessionFile.load(model: m, path: path, options: sessionOptions(params, model: m))
        out.pointee = retainedHandle(SessionHandle(session))
    }
}
