/// One memory-mapped `.safetensors` file, validated against everything a hostile file can lie
/// about before any tensor is handed out.
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object mapping
/// tensor names to `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional
/// `"__metadata__"` object of strings), then the data section; offsets are relative to its
/// start. As in the reference implementation (huggingface/safetensors), the tensors' byte spans
/// must tile the data section exactly: sorted by offset, each begins where the previous one
/// ends, the first at 0 and the last at the end of the file (no overlaps, no holes, no trailing
/// bytes).
package final class SafetensorsFile: @unchecked Sendable {
    /// Largest header accepted (the reference implementation uses the same 100 MB bound).
    package static let maxHeaderBytes = 100_000_000

    package let file: MappedFile
    /// Tensors in the order of their data offsets.
    package let tensors: [TensorView]
    /// The `__metadata__` strings, if any, in file order.
    package let metadata: [(String, String)]
    /// Byte offset of the data section in the file (8 + header length).
    package let dataOffset: Int

    package var path: String { file.path }

    /// Maps and validates `path`. Throws `.io` when it cannot be read, `.badWeights` (naming
    /// the file and the offending tensor) when anything in it is inconsistent, and
    /// `.unsupported` for a tensor in a dtype this library cannot read (F4, F6_*, C64).
    package init(path: String) throws(LlavaError) {
        let file = try MappedFile(path: path)
        self.file = file
        func bad(_ what: String) -> LlavaError { LlavaError(.badWeights, "\(path): \(what)") }

        let bytes = file.bytes
        guard bytes.count >= 8, let base = file.base else {
            throw bad("file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw bad("header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        let n = Int(headerLength)
        guard n >= 2 else { throw bad("header length \(n) is too small for a JSON object") }
        guard n <= bytes.count - 8 else {
            throw bad("header length \(n) runs past the end of the \(bytes.count)-byte file")
        }
        let header: JSONValue
        do {
            header = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)]), maxDepth: 8)
        } catch {
            throw bad("header is not valid UTF-8 JSON (\(error))")
        }
        guard case .object(let entries) = header else { throw bad("header is not a JSON object") }

        let dataStart = 8 + n
        let dataSize = bytes.count - dataStart
        var seen = Set<String>()
        var metadata: [(String, String)] = []
        var spans: [(begin: Int, end: Int, name: String, dtype: DType, shape: [Int])] = []
        spans.reserveCapacity(entries.count)

        for (name, info) in entries {
            guard seen.insert(name).inserted else { throw bad("tensor name '\(name)' appears twice in the header") }
            if name == "__metadata__" {
                guard case .object(let pairs) = info else { throw bad("__metadata__ is not an object") }
                for (k, v) in pairs {
                    guard let s = v.stringValue else { throw bad("__metadata__ value for '\(k)' is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            guard case .object = info else { throw bad("entry '\(name)' is not an object") }
            guard let dtypeName = info["dtype"]?.stringValue else { throw bad("tensor '\(name)' has no dtype string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                if DType.unreadableNames.contains(dtypeName) {
                    throw LlavaError(.unsupported, "\(path): tensor '\(name)' has dtype \(dtypeName), which this library cannot read")
                }
                throw bad("tensor '\(name)' has unknown dtype '\(dtypeName)'")
            }
            guard let shapeValues = info["shape"]?.arrayValue else { throw bad("tensor '\(name)' has no shape array") }
            var shape: [Int] = []
            shape.reserveCapacity(shapeValues.count)
            for d in shapeValues {
                guard case .int(let dim) = d, dim >= 0 else {
                    throw bad("tensor '\(name)' has an invalid dimension \(d.briefDescription) in its shape (dimensions are non-negative integers)")
                }
                shape.append(dim)
            }
            var byteCount = dtype.size
            for dim in shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw bad("tensor '\(name)' shape \(shape) overflows when its byte size is computed") }
                byteCount = product
            }
            guard let offsets = info["data_offsets"]?.arrayValue, offsets.count == 2,
                  case .int(let begin) = offsets[0], case .int(let end) = offsets[1] else {
                throw bad("tensor '\(name)' has no [begin, end] integer data_offsets")
            }
            guard begin >= 0, end >= begin else { throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] out of order") }
            guard end <= dataSize else {
                throw bad("tensor '\(name)' data_offsets [\(begin), \(end)] run past the \(dataSize)-byte data section")
            }
            guard end - begin == byteCount else {
                throw bad("tensor '\(name)' spans \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(byteCount)")
            }
            spans.append((begin, end, name, dtype, shape))
        }

        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        var previous: String? = nil
        for s in spans {
            if s.begin < covered, let previous {
                throw bad("tensors '\(previous)' and '\(s.name)' overlap (bytes \(s.begin)..<\(covered))")
            }
            if s.begin > covered {
                throw bad("bytes \(covered)..<\(s.begin) of the data section belong to no tensor (a hole before '\(s.name)')")
            }
            covered = s.end
            previous = s.name
        }
        guard covered == dataSize else {
            throw bad("the last \(dataSize - covered) bytes of the file belong to no tensor")
        }

        self.tensors = spans.map {
            TensorView(name: $0.name, dtype: $0.dtype, shape: $0.shape, data: base + dataStart + $0.begin, owner: file)
        }
        self.metadata = metadata
        self.dataOffset = dataStart
    }
}

extension JSONValue {
    /// A short rendering for error messages: numbers and literals as written, strings quoted
    /// (cut at 40 characters), containers by kind.
    var briefDescription: String {
        switch self {
        case .null: "null"
        case .bool(let b): String(b)
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .string(let s): "\"" + (s.count > 40 ? String(s.prefix(40)) + "…" : s) + "\""
        case .array: "a list"
        case .object: "an object"
        }
    }
}
