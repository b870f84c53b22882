/// The encoded image formats the decoder reads, recognised by their first bytes (as Pillow
/// recognises them: JPEG starts `FF D8 FF`, PNG with its 8-byte signature).
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg = "JPEG"
    case png = "PNG"

    /// The format of an encoded image, or nil when its first bytes are neither JPEG nor PNG.
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        return nil
    }

    /// The name of another well-known format the first bytes belong to (for error messages).
    static func otherFormatName(_ bytes: UnsafeRawBufferPointer) -> String? {
        let signatures: [(String, [UInt8])] = [
            ("GIF", Array("GIF8".utf8)), ("BMP", Array("BM".utf8)), ("TIFF", [0x49, 0x49, 0x2A, 0x00]),
            ("TIFF", [0x4D, 0x4D, 0x00, 0x2A]), ("JPEG 2000", [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]),
            ("ICO", [0x00, 0x00, 0x01, 0x00]), ("PSD", Array("8BPS".utf8)),
        ]
        for (name, magic) in signatures where bytes.starts(with: magic) { return name }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) {
            return "WebP"
        }
        if bytes.count >= 12, Array(bytes[4..<8]) == Array("ftyp".utf8) { return "HEIF/AVIF" }
        return nil
    }
}
