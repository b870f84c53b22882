/// The header of a safetensors file, built from tensor names, dtypes and shapes: what the
/// quantizer, the benchmarks' synthetic checkpoints and the tests write, so that names and
/// metadata are always escaped (`JSONValue.stringLiteral`) and the layout always agrees with
/// `SafetensorsFile`.
///
/// A file is the 8-byte little-endian header length, the JSON header padded with spaces to a
/// multiple of 8 bytes, then the tensors' bytes back to back in the order they were added
/// (`data_offsets` count from the end of the header).
package struct SafetensorsWriter {
    /// `__metadata__` entries, in order (the object is left out when there are none).
    package var metadata: [(String, String)]
    private var entries: [String] = []
    /// Bytes of tensor data the added tensors take (the offset of the next one).
    package private(set) var dataByteCount = 0

    package init(metadata: [(String, String)] = []) {
        self.metadata = metadata
    }

    /// Adds a tensor of `shape` stored as `dtype`; `byteCount` defaults to the dense size.
    package mutating func add(_ name: String, dtype: DType, shape: [Int], byteCount: Int? = nil) {
        add(name, dtypeName: dtype.rawValue, shape: shape,
            byteCount: byteCount ?? shape.reduce(dtype.size, *))
    }

    /// Adds a tensor under any dtype spelling (tests write dtypes the library refuses).
    package mutating func add(_ name: String, dtypeName: String, shape: [Int], byteCount: Int) {
        let dims = shape.map(String.init).joined(separator: ",")
        entries.append("\(JSONValue.stringLiteral(name)):{\"dtype\":\(JSONValue.stringLiteral(dtypeName)),"
                       + "\"shape\":[\(dims)],\"data_offsets\":[\(dataByteCount),\(dataByteCount + byteCount)]}")
        dataByteCount += byteCount
    }

    /// The bytes before the tensor data: the length prefix and the padded JSON header.
    package func header() -> [UInt8] {
        var members = entries
        if !metadata.isEmpty {
            let pairs = metadata.map { "\(JSONValue.stringLiteral($0.0)):\(JSONValue.stringLiteral($0.1))" }
            members.insert("\"__metadata__\":{" + pairs.joined(separator: ",") + "}", at: 0)
        }
        var json = Array(("{" + members.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        return withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
    }

    /// Writes the header followed by `data` (which must hold `dataByteCount` bytes) to `path`.
    /// Throws `.invalidArgument` for a wrong data size and `.io` when the file cannot be written.
    package func write(to path: String, data: [UInt8]) throws(LlavaError) {
        guard data.count == dataByteCount else {
            throw LlavaError(.invalidArgument, "safetensors '\(path)': \(data.count) data bytes given, the header describes \(dataByteCount)")
        }
        let out = try OutputFile(path: path)
        try out.write(header())
        try out.write(data)
        try out.close()
    }
}
