/// One memory-mapped `.safetensors` file, validated against everything a hostile file can lie
/// about before any tensor is handed out.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON (an object mapping tensor
/// names to `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional
/// `"__metadata__"` object of strings), then the data section; offsets are relative to its start.
public final class SafetensorsFile: @unchecked Sendable {
    /// Largest header accepted (the reference implementation uses the same 100 MB bound).
    public static let maxHeaderBytes = 100_000_000

    public let file: MappedFile
    /// Tensors in the order of their data offsets.
    public let tensors: [TensorView]
    /// The `__metadata__` strings, if any.
    public let metadata: [(String, String)]

    public var path: String { file.path }

    /// Maps and validates `path`. Throws `.io` when it cannot be read and `.badWeights`, with
    /// the file and the offending tensor named, when anything in it is inconsistent.
    public init(path: String) throws(LlavaError) {
        let file = try MappedFile(path: path)
        self.file = file
        func bad(_ what: String) -> LlavaError { LlavaError(.badWeights, "\(path): \(what)") }

        let bytes = file.bytes
        guard bytes.count >= 8 else { throw bad("file is \(bytes.count) bytes, too short for the 8-byte header length") }
        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw bad("header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        let n = Int(headerLength)
        guard n >= 2 else { throw bad("header length \(n) is too small for a JSON object") }
        guard 8 + n <= bytes.count else {
            throw bad("header length \(n) runs past the end of the \(bytes.count)-byte file")
        }
        let header: JSONValue
        do {
            header = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)]), maxDepth: 8)
        } catch {
            throw bad("header is not valid JSON (\(error))")
        }
        guard case .object(let entries) = header else { throw bad("header is not a JSON object") }

        let dataStart = 8 + n
        let dataSize = bytes.count - dataStart
        var seen = Set<String>()
        var metadata: [(String, String)] = []
        var views: [(begin: Int, end: Int, view: TensorView)] = []
        views.reserveCapacity(entries.count)

        for (name, info) in entries {
            guard seen.insert(name).inserted else { throw bad("tensor name '\(name)' appears twice") }
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
            guard let dtype = DType(rawValue: dtypeName) else { throw bad("tensor '\(name)' has unknown dtype '\(dtypeName)'") }
            guard let shapeValues = info["shape"]?.arrayValue else { throw bad("tensor '\(name)' has no shape array") }
            var shape: [Int] = []
            var count = 1
            for d in shapeValues {
                guard case .int(let dim) = d, dim >= 0 else { throw bad("tensor '\(name)' has an invalid dimension in its shape") }
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow, product <= dataSize else {
                    throw bad("tensor '\(name)' shape \(shapeValues.map { $0.intValue ?? -1 }) is larger than the file")
                }
                count = product
                shape.append(dim)
            }
            guard let offsets = info["data_offsets"]?.arrayValue, offsets.count == 2,
                  case .int(let begin) = offsets[0], case .int(let end) = offsets[1] else {
                throw bad("tensor '\(name)' has no [begin, end] data_offsets")
            }
            guard begin >= 0, end >= begin else { throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] out of order") }
            guard end <= dataSize else {
                throw bad("tensor '\(name)' data_offsets [\(begin), \(end)] run past the \(dataSize)-byte data section")
            }
            let expected = count * dtype.size
            guard end - begin == expected else {
                throw bad("tensor '\(name)' spans \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(expected)")
            }
            let view = TensorView(name: name, dtype: dtype, shape: shape,
                                  data: file.base! + dataStart + begin, owner: file)
            views.append((begin, end, view))
        }

        views.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for i in views.indices.dropFirst() where views[i].begin < views[i - 1].end {
            throw bad("tensors '\(views[i - 1].view.name)' and '\(views[i].view.name)' overlap")
        }
        self.tensors = views.map(\.view)
        self.metadata = metadata
    }
}
