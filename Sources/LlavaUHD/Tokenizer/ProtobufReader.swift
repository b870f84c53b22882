/// A reader for the protocol-buffers wire format, enough for SentencePiece's ModelProto.
/// Every read is bounds-checked: a truncated or hostile file gives `.badTokenizer`.
struct ProtobufReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    private let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int
    private let end: Int
    /// Names the file and message in error messages.
    let context: String

    init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil, context: String) {
        self.bytes = bytes
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
        self.context = context
    }

    var isAtEnd: Bool { offset >= end }

    func error(_ what: String) -> LlavaError {
        LlavaError(.badTokenizer, "\(context): \(what) at byte \(offset)")
    }

    mutating func readVarint() throws(LlavaError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw error("truncated varint") }
            let b = bytes[offset]
            offset += 1
            guard shift < 64 else { throw error("varint longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws(LlavaError) -> (number: Int, type: WireType)? {
        guard !isAtEnd else { return nil }
        let key = try readVarint()
        guard let type = WireType(rawValue: UInt8(key & 7)) else {
            throw error("unsupported wire type \(key & 7)")
        }
        let number = key >> 3
        guard number > 0 && number < 1 << 29 else { throw error("invalid field number \(number)") }
        return (Int(number), type)
    }

    /// The byte range of a length-delimited field's payload (the reader moves past it).
    mutating func readLengthDelimited() throws(LlavaError) -> Range<Int> {
        let n = try readVarint()
        guard n <= UInt64(end - offset) else { throw error("length-delimited field of \(n) bytes overruns its message") }
        let start = offset
        offset += Int(n)
        return start..<offset
    }

    mutating func readFixed32() throws(LlavaError) -> UInt32 {
        guard end - offset >= 4 else { throw error("truncated fixed32") }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        offset += 4
        return v
    }

    mutating func readFloat() throws(LlavaError) -> Float {
        Float(bitPattern: try readFixed32())
    }

    mutating func readBool() throws(LlavaError) -> Bool {
        try readVarint() != 0
    }

    /// An int32 field (negative values are sign-extended to 10-byte varints).
    mutating func readInt32() throws(LlavaError) -> Int32 {
        Int32(truncatingIfNeeded: Int64(bitPattern: try readVarint()))
    }

    mutating func skip(_ type: WireType) throws(LlavaError) {
        switch type {
        case .varint: _ = try readVarint()
        case .fixed64:
            guard end - offset >= 8 else { throw error("truncated fixed64") }
            offset += 8
        case .fixed32:
            guard end - offset >= 4 else { throw error("truncated fixed32") }
            offset += 4
        case .lengthDelimited: _ = try readLengthDelimited()
        }
    }

    /// Checks that a field has the wire type its schema gives it.
    func expect(_ type: WireType, _ actual: WireType, field: String) throws(LlavaError) {
        guard type == actual else { throw error("field \(field) has wire type \(actual.rawValue), expected \(type.rawValue)") }
    }

    func slice(_ r: Range<Int>) -> [UInt8] { Array(bytes[r]) }
}
