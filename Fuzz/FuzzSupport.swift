// Shared by every libFuzzer target in Fuzz/Targets (compiled into each target by scripts/fuzz.sh).
//
// Most of the library's parsers take paths (they memory-map their files), so a target writes
// its input to a file in a scratch folder of its own and calls the real loader on it; the
// folder is made once per process (mkdtemp under $TMPDIR) and removed at exit.
//
// A target must not stop on an error the library reports: a thrown `LlavaError` is the
// documented outcome for a hostile input. Only a crash, a sanitizer report, a timeout or
// memory above -rss_limit_mb is a finding.
import Glibc
@testable import LlavaUHD

enum FuzzScratch {
    /// The per-process scratch folder (`$TMPDIR/llavauhd-fuzz.XXXXXX`).
    static let directory: String = {
        let base = String(cString: getenv("TMPDIR") ?? strdup("/tmp"))
        var template = Array((base + "/llavauhd-fuzz.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("fuzz: mkdtemp failed: \(String(cString: strerror(errno)))") }
        let path = String(cString: made)
        atexit { removeTree(FuzzScratch.directory) }
        return path
    }()

    /// Makes (if needed) and returns the subfolder `name` of the scratch folder.
    static func folder(_ name: String) -> String {
        let path = directory + "/" + name
        mkdir(path, 0o700)
        return path
    }

    /// Writes `bytes` to `path`, replacing the file (a crash here is the harness's, not the
    /// library's: it stops the run with a message).
    static func write(_ bytes: UnsafeRawBufferPointer, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fatalError("fuzz: cannot write \(path): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { fatalError("fuzz: write to \(path) failed") }
            done += n
        }
        close(fd)
    }

    /// Copies the file at `source` to `path` (for the fixed companions of a fuzzed file).
    static func copy(_ source: String, to path: String) {
        guard let f = fopen(source, "rb") else { fatalError("fuzz: cannot read fixture \(source)") }
        defer { fclose(f) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        data.withUnsafeBytes { write($0, to: path) }
    }

    /// Removes `path` if it exists.
    static func remove(_ path: String) { unlink(path) }
}

/// The fuzzer's input as a raw buffer (libFuzzer passes a null pointer for an empty input).
func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
    guard let data, size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: data, count: size)
}

/// The input split at the first occurrence of `separator` (the whole input and an empty second
/// part when it does not occur): how a target takes two files from one input.
func fuzzSplit(_ bytes: UnsafeRawBufferPointer, separator: String) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
    let sep = Array(separator.utf8)
    if bytes.count >= sep.count {
        for i in 0...(bytes.count - sep.count) where bytes[i] == sep[0] {
            if bytes[i..<(i + sep.count)].elementsEqual(sep) {
                return (UnsafeRawBufferPointer(rebasing: bytes[0..<i]),
                        UnsafeRawBufferPointer(rebasing: bytes[(i + sep.count)...]))
            }
        }
    }
    return (bytes, UnsafeRawBufferPointer(start: nil, count: 0))
}

/// Runs a target's one-time setup (loading its fixed companion files) from libFuzzer's
/// LLVMFuzzerInitialize, before any input: setup is not timed against -timeout, and a broken
/// fixture stops the run at once instead of looking like a finding.
func fuzzInitialize(_ setup: () -> Void) -> Int32 {
    setup()
    return 0
}

/// A fixture path given to the run in an environment variable (set by scripts/fuzz.sh).
func fuzzFixture(_ variable: String) -> String {
    guard let value = getenv(variable) else { fatalError("fuzz: \(variable) is not set (run through scripts/fuzz.sh)") }
    return String(cString: value)
}

/// Uses a tokenizer that loaded from fuzzed files once, as a chat would: encodes a text with
/// special-token text, spaces, bytes outside the vocabulary and an image marker, decodes the
/// ids whole and one at a time (streaming), and asks every id for its token and piece.
func exercise(_ tokenizer: any Tokenizer) {
    let text = "Hello  world\n\t<s></s><|im_end|><unk> \u{00e9}\u{4e16}\u{1F600} <image>\n?"
    guard let ids = try? tokenizer.encodeImagePrompt(text) else { return }
    let plain = ids.filter { $0 >= 0 }
    _ = try? tokenizer.decode(plain, skipSpecialTokens: false)
    var stream = StreamingDetokenizer(tokenizer: tokenizer)
    for id in plain {
        _ = try? stream.append(id)
        _ = tokenizer.token(forId: id)
        _ = tokenizer.piece(forId: id, renderSpecial: true)
    }
    _ = stream.finish()
    for id in [-1, 0, Int32(clamping: tokenizer.vocabularySize - 1), Int32(clamping: tokenizer.vocabularySize), Int32.max] {
        _ = tokenizer.piece(forId: id, renderSpecial: true)
        _ = tokenizer.token(forId: id)
        _ = tokenizer.isSpecialToken(id)
    }
}

/// Deletes a folder tree (the scratch folder at exit).
private func removeTree(_ path: String) {
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let child = path + "/" + name
            var info = stat()
            if lstat(child, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        closedir(dir)
    }
    rmdir(path)
}
