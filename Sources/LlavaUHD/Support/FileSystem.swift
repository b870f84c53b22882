#if canImport(Glibc)
import Glibc
#endif

// The file-system helpers of the library: small whole-file reads and writes, existence checks
// and directory listings. Large files are memory-mapped (`MappedFile`) or written with
// `OutputFile`.

/// Reads a whole (small) file into memory: config.json, tokenizer files, indexes.
/// Throws `.io` when the file cannot be read or is larger than `limit` bytes.
package func readWholeFile(_ path: String, limit: Int = 1 << 30) throws(LlavaError) -> [UInt8] {
    let file = try MappedFile(path: path)
    guard file.size <= limit else {
        throw LlavaError(.io, "'\(path)' is \(file.size) bytes, more than the \(limit)-byte limit for this kind of file")
    }
    return Array(file.bytes)
}

/// True if `path` names an existing regular file (symbolic links are followed, as in a
/// Hugging Face cache, whose files link into a blob store).
package func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}

/// True if `path` names an existing directory (symbolic links are followed).
package func directoryExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// True if anything exists at `path` (a file, directory, FIFO, dangling link...).
func pathExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

/// The names in a directory, sorted, without "." and "..". Throws `.io` when it cannot be read.
package func listDirectory(_ path: String) throws(LlavaError) -> [String] {
    guard let d = opendir(path) else {
        throw LlavaError(.io, "cannot list '\(path)': \(String(cString: strerror(errno)))")
    }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// The last component of `path` ("dir/model.safetensors" → "model.safetensors").
func baseName(_ path: String) -> String {
    String(path.utf8.split(separator: UInt8(ascii: "/")).last.map { String(decoding: $0, as: UTF8.self) } ?? path)
}

/// Writes `bytes` to `path` (created or truncated). Throws `.io`.
func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) throws(LlavaError) {
    let out = try OutputFile(path: path)
    try out.write(bytes)
    try out.close()
}

/// Writes `bytes` to `path` (created or truncated). Throws `.io`.
func writeFile(_ path: String, _ bytes: [UInt8]) throws(LlavaError) {
    let out = try OutputFile(path: path)
    try out.write(bytes)
    try out.close()
}
