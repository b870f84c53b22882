import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif

/// Scratch directories and small files for the tests.
package enum TestFiles {
    /// A new empty directory under $TMPDIR (or /tmp).
    package static func makeTemporaryDirectory(_ tag: String) -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/llavauhd-\(tag)-XXXXXX").utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buf in
            buf.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
        }
        return made ?? base + "/llavauhd-\(tag)-unavailable"
    }

    /// Removes a directory made by `makeTemporaryDirectory`.
    package static func remove(_ directory: String) {
        guard directory.contains("/llavauhd-") else { return }
        _ = system("rm -rf '\(directory)'")
    }

    /// Writes `bytes` to `path`; false on failure.
    @discardableResult
    package static func write(_ bytes: [UInt8], to path: String) -> Bool {
        guard let f = fopen(path, "wb") else { return false }
        defer { fclose(f) }
        return bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) } == bytes.count
    }

    /// Writes a safetensors file whose tensors hold zero bytes of their dtype, laid out in
    /// order (enough for tests that only look at names and shapes).
    package static func writeSafetensors(_ tensors: [(name: String, dtype: DType, shape: [Int])], to path: String) {
        var header = SafetensorsWriter()
        for t in tensors { header.add(t.name, dtype: t.dtype, shape: t.shape) }
        write(header.header() + [UInt8](repeating: 0, count: header.dataByteCount), to: path)
    }

    /// Runs a shell command; true if it exited with status 0.
    package static func run(_ command: String) -> Bool { system(command) == 0 }

    /// True if `python3` can be run.
    package static var hasPython: Bool { run("python3 -c 'import json, struct' >/dev/null 2>&1") }
}

/// The name of a Status case as Swift spells it (the form expectations.json uses).
package func statusName(_ s: Status) -> String { String(describing: s) }

/// The error `body` throws, or nil.
package func thrownError(_ body: () throws(LlavaError) -> Void) -> LlavaError? {
    do { try body(); return nil } catch { return error }
}
