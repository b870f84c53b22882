import LlavaUHD

/// A NumPy `.npy` array (format versions 1–3, little-endian, C order) read into memory.
/// Test fixtures are stored this way.
package struct NPYArray: Sendable {
    package let shape: [Int]
    /// The dtype descriptor, e.g. "<f4", "<f2", "<i8", "|u1".
    package let descr: String
    package let bytes: [UInt8]

    package var count: Int { shape.reduce(1, *) }

    package init(path: String) throws {
        let data = try readWholeFile(path)
        guard data.count >= 10, data[0] == 0x93, Array(data[1..<6]) == Array("NUMPY".utf8) else {
            throw LlavaError(.io, "\(path): not an .npy file")
        }
        let major = data[6]
        let headerLen: Int
        let start: Int
        if major == 1 {
            headerLen = Int(data[8]) | Int(data[9]) << 8
            start = 10
        } else {
            headerLen = Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
            start = 12
        }
        let header = String(decoding: data[start..<(start + headerLen)], as: UTF8.self)
        func field(_ key: String) -> Substring? {
            guard let r = header.firstRange(of: "'\(key)':") else { return nil }
            return header[r.upperBound...].drop(while: { $0 == " " })
        }
        guard let d = field("descr"), d.first == "'" else { throw LlavaError(.io, "\(path): no descr") }
        descr = String(d.dropFirst().prefix(while: { $0 != "'" }))
        guard let f = field("fortran_order"), f.hasPrefix("False") else { throw LlavaError(.io, "\(path): not C order") }
        guard let s = field("shape"), s.first == "(" else { throw LlavaError(.io, "\(path): no shape") }
        let inner = s.dropFirst().prefix(while: { $0 != ")" })
        shape = inner.split(separator: ",").compactMap { Int($0.trimmingCharacters()) }
        bytes = Array(data[(start + headerLen)...])
        let itemSize = Int(descr.dropFirst(2)) ?? 0
        guard bytes.count == count * itemSize else { throw LlavaError(.io, "\(path): data size mismatch") }
    }

    /// The values as Float (from f4, f2, f8, integer or bool arrays).
    package var floats: [Float] {
        bytes.withUnsafeBytes { raw in
            (0..<count).map { i -> Float in
                switch descr {
                case "<f4": return raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
                case "<f2": return Float(raw.loadUnaligned(fromByteOffset: i * 2, as: Float16.self))
                case "<f8": return Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
                case "<i8": return Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case "<i4": return Float(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                case "|u1", "|b1": return Float(raw[i])
                default: fatalError("unsupported npy dtype \(descr)")
                }
            }
        }
    }

    /// The values as Int (from integer arrays).
    package var ints: [Int] {
        bytes.withUnsafeBytes { raw in
            (0..<count).map { i -> Int in
                switch descr {
                case "<i8": return Int(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case "<i4": return Int(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                case "|u1": return Int(raw[i])
                default: fatalError("npy dtype \(descr) is not an integer type")
                }
            }
        }
    }

    /// The values as bytes (uint8 arrays).
    package var uint8: [UInt8] {
        precondition(descr == "|u1", "npy dtype \(descr) is not uint8")
        return bytes
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while let f = s.first, f == " " { s = s.dropFirst() }
        while let l = s.last, l == " " { s = s.dropLast() }
        return s
    }
}
