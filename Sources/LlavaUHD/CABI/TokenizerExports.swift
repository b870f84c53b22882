import CLlavaUHD
#if canImport(Glibc)
import Glibc
#endif

@_cdecl("luhd_model_tokenize")
public func luhd_model_tokenize(_ handle: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ textLength: Int64, _ addBOS: Bool,
                          _ parseSpecial: Bool, _ tokens: UnsafeMutablePointer<Int32>?, _ nMax: Int32,
                          _ nTokens: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_model_tokenize") { () throws(LlavaError) in
        let model = try object(handle, as: ModelHandle.self, "model").model
        let nTokens = try nonNull(nTokens, "n_tokens")
        let bytes = [UInt8](try textBytes(text, length: textLength, "text"))
        guard nMax >= 0 else { throw LlavaError(.invalidArgument, "n_max is \(nMax); it must be 0 or more") }
        let ids = try model.tokenizer.encode(utf8: bytes, addBOS: addBOS, parseSpecial: parseSpecial)
        guard ids.count <= Int32.max else { throw LlavaError(.invalidArgument, "text gives more than 2^31 tokens") }
        nTokens.pointee = Int32(ids.count)
        guard ids.count <= Int(nMax) else {
            throw LlavaError(.bufferTooSmall, "\(ids.count) tokens do not fit in n_max = \(nMax)")
        }
        if !ids.isEmpty {
            let out = try nonNull(tokens, "tokens")
            ids.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: ids.count) }
        }
    }
}

/// Copies `bytes` to a caller buffer, with a NUL after them when `terminate`.
private func copyOut(_ bytes: [UInt8], to buf: UnsafeMutablePointer<CChar>?, size: Int,
                     length: UnsafeMutablePointer<Int>, terminate: Bool) throws(LlavaError) {
    length.pointee = bytes.count
    let needed = bytes.count + (terminate ? 1 : 0)
    guard needed <= size else { throw LlavaError(.bufferTooSmall, "\(needed) bytes do not fit in buf_size = \(size)") }
    guard needed > 0 else { return }
    let buf = try nonNull(buf, "buf")
    bytes.withUnsafeBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    if terminate { buf[bytes.count] = 0 }
}

@_cdecl("luhd_model_detokenize")
public func luhd_model_detokenize(_ handle: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ nTokens: Int32,
                            _ skipSpecial: Bool, _ buf: UnsafeMutablePointer<CChar>?, _ bufSize: UInt,
                            _ nBytes: UnsafeMutablePointer<Int>?) -> luhd_status {
    cCall("luhd_model_detokenize") { () throws(LlavaError) in
        let model = try object(handle, as: ModelHandle.self, "model").model
        let nBytes = try nonNull(nBytes, "n_bytes")
        guard nTokens >= 0 else { throw LlavaError(.invalidArgument, "n_tokens is \(nTokens); it must be 0 or more") }
        let ids = nTokens == 0 ? [] : Array(UnsafeBufferPointer(start: try nonNull(tokens, "tokens"), count: Int(nTokens)))
        let text = try model.tokenizer.decode(ids, skipSpecialTokens: skipSpecial)
        try copyOut(Array(text.utf8), to: buf, size: byteCount(bufSize, "buf_size"), length: nBytes, terminate: true)
    }
}

@_cdecl("luhd_model_token_to_piece")
public func luhd_model_token_to_piece(_ handle: OpaquePointer?, _ token: Int32, _ renderSpecial: Bool,
                                _ buf: UnsafeMutablePointer<CChar>?, _ bufSize: UInt,
                                _ nBytes: UnsafeMutablePointer<Int>?) -> luhd_status {
    cCall("luhd_model_token_to_piece") { () throws(LlavaError) in
        let model = try object(handle, as: ModelHandle.self, "model").model
        let nBytes = try nonNull(nBytes, "n_bytes")
        guard let piece = model.tokenizer.piece(forId: token, renderSpecial: renderSpecial) else {
            throw LlavaError(.invalidArgument, "token \(token) is outside the vocabulary (0..<\(model.tokenizer.vocabularySize))")
        }
        try copyOut(piece, to: buf, size: byteCount(bufSize, "buf_size"), length: nBytes, terminate: false)
    }
}
