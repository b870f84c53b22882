/// Little-endian binary encoding of the library's own files (saved sessions): a writer that
/// appends to a byte array, and a reader that checks every read against the bytes it has, so
/// a hostile file ends in a thrown error naming what was being read, never in a trap.

/// Appends little-endian values to `bytes`.
struct BinaryWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    /// A signed value as its 64-bit two's complement.
    mutating func i64(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func raw(_ v: [UInt8]) { bytes += v }
    /// A length (u64) and the UTF-8 bytes.
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += s.utf8
    }
    /// Float32 values, raw (the count is the caller's to write).
    mutating func floats(_ v: [Float]) {
        v.withUnsafeBytes { bytes += $0 }
    }
}

/// Reads little-endian values from a buffer; any read past its end, and any count that the
/// remaining bytes cannot hold, throws `status` with a message naming `source` and the item.
struct BinaryReader {
    let data: UnsafeRawBufferPointer
    let status: Status
    let source: String
    private(set) var offset = 0

    init(_ data: UnsafeRawBufferPointer, status: Status, source: String) {
        self.data = data
        self.status = status
        self.source = source
    }

    var remaining: Int { data.count - offset }

    func failure(_ message: String) -> LlavaError { LlavaError(status, "\(source): \(message)") }

    /// The next `count` bytes, without copying.
    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(LlavaError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else {
            throw failure("\(what()) needs \(count) bytes at offset \(offset) but only \(remaining) remain")
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: data[offset..<(offset + count)])
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(LlavaError) -> UInt8 {
        try bytes(1, what())[0]
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(LlavaError) -> UInt32 {
        UInt32(littleEndian: try bytes(4, what()).loadUnaligned(as: UInt32.self))
    }

    mutating func u64(_ what: @autoclosure () -> String) throws(LlavaError) -> UInt64 {
        UInt64(littleEndian: try bytes(8, what()).loadUnaligned(as: UInt64.self))
    }

    mutating func i64(_ what: @autoclosure () -> String) throws(LlavaError) -> Int {
        Int(Int64(bitPattern: try u64(what())))
    }

    mutating func f32(_ what: @autoclosure () -> String) throws(LlavaError) -> Float {
        Float(bitPattern: try u32(what()))
    }

    /// A u64 that must lie in `range`.
    mutating func count(_ range: ClosedRange<Int>, _ what: @autoclosure () -> String) throws(LlavaError) -> Int {
        let v = try u64(what())
        guard v <= UInt64(range.upperBound), Int(v) >= range.lowerBound else {
            throw failure("\(what()) is \(v); it must be in \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(v)
    }

    /// A u32 that must lie in `range`.
    mutating func small(_ range: ClosedRange<Int>, _ what: @autoclosure () -> String) throws(LlavaError) -> Int {
        let v = Int(try u32(what()))
        guard range.contains(v) else { throw failure("\(what()) is \(v); it must be in \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    /// A length-prefixed UTF-8 string of at most `limit` bytes.
    mutating func string(limit: Int, _ what: @autoclosure () -> String) throws(LlavaError) -> String {
        let n = try count(0...min(limit, remaining), "length of \(what())")
        guard let s = String(validating: try bytes(n, what()), as: UTF8.self) else {
            throw failure("\(what()) is not valid UTF-8")
        }
        return s
    }

    /// `count` float32 values, the count first checked against the bytes left.
    mutating func floats(_ count: Int, _ what: @autoclosure () -> String) throws(LlavaError) -> [Float] {
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: 4)
        guard count >= 0, !overflow, byteCount <= remaining else {
            throw failure("\(what()) needs \(count) floats at offset \(offset) but only \(remaining) bytes remain")
        }
        let raw = try bytes(byteCount, what())
        return try Allocation.array(count: count, what: what()) { out in
            UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
        }
    }
}
