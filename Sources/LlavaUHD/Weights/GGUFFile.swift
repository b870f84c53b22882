/// A memory-mapped GGUF file (versions 2 and 3, little-endian), validated against everything a
/// hostile file can lie about before any tensor is handed out.
///
/// Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata count; the metadata
/// key/value pairs (a key string, a u32 value type, the value; strings are a u64 byte length and
/// UTF-8 bytes; arrays a u32 element type, a u64 count and the elements, possibly nested); the
/// tensor infos (name string, u32 dimension count, u64 dimensions innermost first, u32 GGML
/// type, u64 offset into the data section); padding to `general.alignment` (u32, a power of
/// two, default 32); the data section. Every tensor offset must be a multiple of the alignment.
///
/// Checks (each failure throws `.badWeights` naming the file and the offending key or tensor):
/// counts and lengths bounded by the bytes left in the file, strings valid UTF-8, no duplicate
/// keys or tensor names, array nesting at most 8 deep and at most 16 M array elements in all,
/// known value and tensor types (unknown GGML type ids are rejected with the tensor's name),
/// at most 4 dimensions, rows a multiple of the type's block size, sizes computed without
/// overflow, tensors aligned, inside the file and not overlapping. Tensors are handed out as
/// views into the mapping, never copied: dense types as `TensorView` (shape outermost first,
/// the reverse of the file's order), 2-D weights of any `QuantFormat` as `QuantizedMatrix`.
package final class GGUFFile: @unchecked Sendable {
    /// Metadata arrays may nest at most this deep.
    package static let maxArrayDepth = 8
    /// The longest tensor name GGUF allows, in bytes.
    package static let maxTensorNameBytes = 64
    /// At most this many metadata array elements in all (real tokenizers have well under a
    /// million): the parsed values take tens of bytes each, so a file of one-byte elements must
    /// not be able to make the reader allocate many times its size.
    package static let maxMetadataElements = 1 << 24

    package let file: MappedFile
    package let version: Int
    package let alignment: Int
    /// The metadata in file order.
    package let metadata: [(key: String, value: GGUFValue)]
    /// The tensors in file order.
    package let tensors: [GGUFTensorInfo]
    /// Absolute file offset of the data section.
    package let dataOffset: Int

    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    package var path: String { file.path }

    /// Maps and validates `path`. Throws `.io` when it cannot be read, `.badWeights` when it is
    /// not a valid GGUF file.
    package init(path: String) throws(LlavaError) {
        let file = try MappedFile(path: path)
        self.file = file
        var r = GGUFReader(bytes: file.bytes, path: path)

        let magic = try r.bytes(4, what: "magic")
        guard magic.elementsEqual("GGUF".utf8) else { throw r.bad("not a GGUF file (magic is not \"GGUF\")") }
        let version = try r.u32("version")
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw r.bad("big-endian GGUF files are not supported")
            }
            throw r.bad("GGUF version \(version) is not supported (only 2 and 3)")
        }
        self.version = Int(version)
        let tensorCount = try r.count("tensor count", minimumBytesEach: 24)
        let kvCount = try r.count("metadata count", minimumBytesEach: 13)

        var metadata: [(key: String, value: GGUFValue)] = []
        var metadataIndex: [String: Int] = [:]
        metadata.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let key = try r.string("key of metadata entry \(i)")
            guard !key.isEmpty else { throw r.bad("metadata entry \(i) has an empty key") }
            guard metadataIndex[key] == nil else { throw r.bad("metadata key '\(key)' appears twice") }
            let type = try r.u32("type of '\(key)'")
            let value = try r.value(type: type, key: key, depth: 0)
            metadataIndex[key] = metadata.count
            metadata.append((key, value))
        }

        var alignment = 32
        if let i = metadataIndex["general.alignment"] {
            guard case .uint32(let a) = metadata[i].value else {
                throw r.bad("general.alignment must be a UINT32")
            }
            guard a > 0, a & (a - 1) == 0 else { throw r.bad("general.alignment \(a) is not a power of two") }
            alignment = Int(a)
        }
        self.alignment = alignment

        struct RawInfo { let name: String; let dims: [Int]; let type: GGMLType; let offset: UInt64 }
        var raw: [RawInfo] = []
        raw.reserveCapacity(tensorCount)
        var tensorIndex: [String: Int] = [:]
        for i in 0..<tensorCount {
            let name = try r.string("name of tensor \(i)")
            guard name.utf8.count <= Self.maxTensorNameBytes else {
                throw r.bad("tensor name '\(name)' is longer than \(Self.maxTensorNameBytes) bytes")
            }
            guard tensorIndex[name] == nil else { throw r.bad("tensor name '\(name)' appears twice") }
            let nDims = try r.u32("dimension count of '\(name)'")
            guard nDims <= 4 else { throw r.bad("tensor '\(name)' has \(nDims) dimensions (at most 4)") }
            var dims: [Int] = []
            for d in 0..<Int(nDims) {
                let v = try r.u64("dimension \(d) of '\(name)'")
                guard v <= UInt64(Int.max) else { throw r.bad("tensor '\(name)' dimension \(d) is \(v)") }
                dims.append(Int(v))
            }
            let typeID = try r.u32("type of '\(name)'")
            guard let type = GGMLType(id: Int(typeID)) else {
                throw r.bad("tensor '\(name)' has unknown GGML type id \(typeID)")
            }
            let offset = try r.u64("offset of '\(name)'")
            tensorIndex[name] = raw.count
            raw.append(RawInfo(name: name, dims: dims, type: type, offset: offset))
        }

        let end = r.position
        let dataOffset = (end + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        let fileSize = file.size
        if tensorCount > 0, dataOffset > fileSize {
            throw r.bad("the data section would start at byte \(dataOffset), past the end of the \(fileSize)-byte file")
        }
        let dataSize = max(0, fileSize - dataOffset)

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(raw.count)
        for t in raw {
            var count = 1
            for d in t.dims {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else {
                    throw r.bad("tensor '\(t.name)' dimensions \(t.dims) overflow")
                }
                count = p
            }
            let inner = t.dims.first ?? 1
            guard inner % t.type.blockElements == 0 else {
                throw r.bad("tensor '\(t.name)' has rows of \(inner) elements, not a multiple of the \(t.type.name) block of \(t.type.blockElements)")
            }
            let (bytes, o) = (count / t.type.blockElements).multipliedReportingOverflow(by: t.type.blockBytes)
            guard !o, bytes <= dataSize else {
                throw r.bad("tensor '\(t.name)' (\(t.type.name) \(t.dims)) is larger than the \(dataSize)-byte data section")
            }
            guard t.offset % UInt64(alignment) == 0 else {
                throw r.bad("tensor '\(t.name)' offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            guard t.offset <= UInt64(dataSize), Int(t.offset) + bytes <= dataSize else {
                throw r.bad("tensor '\(t.name)' at offset \(t.offset) with \(bytes) bytes runs past the end of the \(dataSize)-byte data section")
            }
            infos.append(GGUFTensorInfo(name: t.name, dimensions: t.dims, type: t.type, elementCount: count,
                                        fileOffset: dataOffset + Int(t.offset), byteCount: bytes))
        }
        let byOffset = infos.sorted { ($0.fileOffset, $0.byteCount) < ($1.fileOffset, $1.byteCount) }
        for i in byOffset.indices.dropFirst() where byOffset[i].fileOffset < byOffset[i - 1].fileOffset + byOffset[i - 1].byteCount {
            throw r.bad("tensors '\(byOffset[i - 1].name)' and '\(byOffset[i].name)' overlap")
        }

        self.metadata = metadata
        self.metadataIndex = metadataIndex
        self.tensors = infos
        self.tensorIndex = tensorIndex
    }

    // MARK: Metadata

    /// The value of metadata `key`, or nil.
    package subscript(key: String) -> GGUFValue? { metadataIndex[key].map { metadata[$0].value } }

    /// `general.architecture` ("qwen2", "llama", ...).
    package var architecture: String? { self["general.architecture"]?.stringValue }

    /// An integer value of any width, or nil when absent or not an integer.
    package func int(_ key: String) -> Int? { self[key]?.intValue }
    /// A float (or integer) value as Double.
    package func double(_ key: String) -> Double? { self[key]?.doubleValue }
    package func string(_ key: String) -> String? { self[key]?.stringValue }
    package func bool(_ key: String) -> Bool? { self[key]?.boolValue }

    /// An array of strings (e.g. `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`), or nil when
    /// absent or not an array of strings.
    package func strings(_ key: String) -> [String]? {
        guard case .array(8, let a)? = self[key] else { return nil }
        return a.compactMap(\.stringValue)
    }

    /// An array of integers (e.g. `tokenizer.ggml.token_type`), or nil.
    package func ints(_ key: String) -> [Int]? {
        guard let a = self[key]?.arrayValue else { return nil }
        let v = a.compactMap(\.intValue)
        return v.count == a.count ? v : nil
    }

    /// An array of numbers as Float (e.g. `tokenizer.ggml.scores`), or nil.
    package func floats(_ key: String) -> [Float]? {
        guard let a = self[key]?.arrayValue else { return nil }
        let v = a.compactMap { $0.doubleValue.map(Float.init) }
        return v.count == a.count ? v : nil
    }

    /// A metadata value the caller needs, typed: throws `.badConfig` naming the key when it is
    /// absent or not an integer.
    package func requireInt(_ key: String) throws(LlavaError) -> Int {
        guard let v = int(key) else { throw LlavaError(.badConfig, "\(path): metadata '\(key)' is missing or not an integer") }
        return v
    }

    // MARK: Tensors

    /// The info of tensor `name`, or nil.
    package func tensorInfo(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// Tensor `name` of a plain type (F32, F16, BF16, I8...I64, F64) as a `TensorView` with the
    /// shape outermost first. Throws `.missingTensor` or `.tensorMismatch` (block-quantized type).
    package func tensor(_ name: String) throws(LlavaError) -> TensorView {
        let info = try require(name)
        guard let dtype = info.type.dtype else {
            throw LlavaError(.tensorMismatch, "\(path): tensor '\(name)' is \(info.type.name), not a plain element type; read it with matrix(_:)")
        }
        return TensorView(name: name, dtype: dtype, shape: info.shape, data: file.base! + info.fileOffset, owner: file)
    }

    /// Tensor `name` as a `QuantizedMatrix`: rows = the product of the outer dimensions, columns
    /// = the innermost one. Throws `.missingTensor`, or `.unsupported` for a GGML type the kernels
    /// do not implement.
    package func matrix(_ name: String) throws(LlavaError) -> QuantizedMatrix {
        let info = try require(name)
        guard let format = info.type.format else {
            throw LlavaError(.unsupported, "\(path): tensor '\(name)' has GGML type \(info.type.name); supported: \(QuantFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let columns = info.dimensions.first ?? 1
        let rows = columns == 0 ? 0 : info.elementCount / columns
        return try QuantizedMatrix(name: name, format: format, rows: rows, columns: columns,
                                   data: file.base! + info.fileOffset, owner: file)
    }

    private func require(_ name: String) throws(LlavaError) -> GGUFTensorInfo {
        guard let info = tensorInfo(name) else { throw LlavaError(.missingTensor, "\(path): no tensor '\(name)'") }
        return info
    }
}

/// Where one tensor of a GGUF file is and what it holds.
package struct GGUFTensorInfo: Sendable, Equatable {
    package let name: String
    /// Dimensions as the file lists them: innermost (contiguous) first.
    package let dimensions: [Int]
    package let type: GGMLType
    package let elementCount: Int
    /// Absolute offset of the first byte in the file.
    package let fileOffset: Int
    package let byteCount: Int

    /// The shape outermost first (the order of `TensorView.shape` and PyTorch).
    package var shape: [Int] { dimensions.reversed() }
}

/// A bounds-checked little-endian cursor over the mapped bytes.
struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var position = 0
    /// Metadata array elements read so far.
    var elements = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    func bad(_ what: String) -> LlavaError { LlavaError(.badWeights, "\(path): \(what)") }

    mutating func bytes(_ n: Int, what: String) throws(LlavaError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw bad("file ends inside \(what) (needs \(n) bytes at offset \(position), \(remaining) left)")
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(LlavaError) -> T {
        let b = try bytes(MemoryLayout<T>.size, what: what)
        return T(littleEndian: b.loadUnaligned(as: T.self))
    }

    mutating func u32(_ what: String) throws(LlavaError) -> UInt32 { try load(UInt32.self, what) }
    mutating func u64(_ what: String) throws(LlavaError) -> UInt64 { try load(UInt64.self, what) }

    /// A u64 count whose items take at least `minimumBytesEach` bytes each: bounded by what is
    /// left of the file.
    mutating func count(_ what: String, minimumBytesEach: Int) throws(LlavaError) -> Int {
        let n = try u64(what)
        guard n <= UInt64(remaining / minimumBytesEach) else {
            throw bad("\(what) \(n) cannot fit in the \(remaining) bytes left")
        }
        return Int(n)
    }

    mutating func string(_ what: String) throws(LlavaError) -> String {
        let n = try u64("length of \(what)")
        guard n <= UInt64(remaining) else { throw bad("\(what) claims \(n) bytes but only \(remaining) are left") }
        let b = try bytes(Int(n), what: what)
        guard let s = String(validating: b, as: UTF8.self) else { throw bad("\(what) is not valid UTF-8") }
        return s
    }

    /// Smallest encoded size of one value of type `type`.
    static func minimumSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 10, 11, 12: 8
        case 8: 8
        case 9: 12
        default: nil
        }
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws(LlavaError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try load(UInt8.self, "'\(key)'"))
        case 1: return .int8(try load(Int8.self, "'\(key)'"))
        case 2: return .uint16(try load(UInt16.self, "'\(key)'"))
        case 3: return .int16(try load(Int16.self, "'\(key)'"))
        case 4: return .uint32(try load(UInt32.self, "'\(key)'"))
        case 5: return .int32(try load(Int32.self, "'\(key)'"))
        case 6: return .float32(Float(bitPattern: try load(UInt32.self, "'\(key)'")))
        case 7:
            let b = try load(UInt8.self, "'\(key)'")
            guard b <= 1 else { throw bad("metadata '\(key)' has boolean byte \(b) (must be 0 or 1)") }
            return .bool(b == 1)
        case 8: return .string(try string("value of '\(key)'"))
        case 9:
            guard depth < GGUFFile.maxArrayDepth else {
                throw bad("metadata '\(key)' nests arrays deeper than \(GGUFFile.maxArrayDepth)")
            }
            let elementType = try u32("element type of '\(key)'")
            guard let size = Self.minimumSize(elementType) else {
                throw bad("metadata '\(key)' has arrays of unknown value type \(elementType)")
            }
            let n = try count("element count of '\(key)'", minimumBytesEach: size)
            elements += n
            guard elements <= GGUFFile.maxMetadataElements else {
                throw bad("metadata arrays hold more than \(GGUFFile.maxMetadataElements) elements (at '\(key)')")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(elementType: elementType, items)
        case 10: return .uint64(try load(UInt64.self, "'\(key)'"))
        case 11: return .int64(try load(Int64.self, "'\(key)'"))
        case 12: return .float64(Double(bitPattern: try load(UInt64.self, "'\(key)'")))
        default: throw bad("metadata '\(key)' has unknown value type \(type)")
        }
    }
}
