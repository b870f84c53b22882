#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// Builds GGUF files byte by byte for the hostile-file tests, so each case states exactly which
/// field lies. Values are written raw: callers choose counts and types independently of the
/// payload that follows.
struct GGUFBuilder {
    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var tensorCount: UInt64? = nil   // nil: the number of tensors added
    var kvCount: UInt64? = nil       // nil: the number of entries added
    var kvs: [[UInt8]] = []
    var infos: [[UInt8]] = []
    var alignment = 32
    var data: [UInt8] = []
    var padData = true

    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func str(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }
    static func rawStr(_ b: [UInt8]) -> [UInt8] { u64(UInt64(b.count)) + b }

    /// A key, a value type and the encoded value.
    mutating func kv(_ key: String, type: UInt32, _ payload: [UInt8]) {
        kvs.append(Self.str(key) + Self.u32(type) + payload)
    }

    mutating func kvU32(_ key: String, _ v: UInt32) { kv(key, type: 4, Self.u32(v)) }
    mutating func kvString(_ key: String, _ v: String) { kv(key, type: 8, Self.str(v)) }

    /// A tensor info with raw fields.
    mutating func info(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        var b = Self.str(name) + Self.u32(UInt32(dims.count))
        for d in dims { b += Self.u64(d) }
        b += Self.u32(type) + Self.u64(offset)
        infos.append(b)
    }

    /// An F32 tensor of `count` elements appended to the data section (aligned).
    mutating func f32Tensor(_ name: String, count: Int) {
        while data.count % alignment != 0 { data.append(0) }
        info(name, dims: [UInt64(count)], type: 0, offset: UInt64(data.count))
        for i in 0..<count { data += Self.u32(Float(i).bitPattern) }
    }

    func bytes() -> [UInt8] {
        var b = magic + Self.u32(version)
        b += Self.u64(tensorCount ?? UInt64(infos.count))
        b += Self.u64(kvCount ?? UInt64(kvs.count))
        for k in kvs { b += k }
        for i in infos { b += i }
        if padData { while b.count % alignment != 0 { b.append(0) } }
        return b + data
    }
}

/// Writes `bytes` to a fresh temporary file and returns its path.
func temporaryFile(_ bytes: [UInt8], suffix: String = ".gguf") -> String {
    var template = Array("/tmp/luhd-quant-XXXXXX\(suffix)".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count)) }
    precondition(fd >= 0, "cannot create a temporary file")
    let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    bytes.withUnsafeBytes { p in
        var off = 0
        while off < p.count {
            let n = write(fd, p.baseAddress! + off, p.count - off)
            precondition(n > 0, "cannot write \(path)")
            off += n
        }
    }
    close(fd)
    return path
}

/// Opens `bytes` as a GGUF file; returns the error it throws (nil if it opened).
func ggufError(_ bytes: [UInt8]) -> LlavaError? {
    let path = temporaryFile(bytes)
    defer { unlink(path) }
    do {
        _ = try GGUFFile(path: path)
        return nil
    } catch {
        return error
    }
}
