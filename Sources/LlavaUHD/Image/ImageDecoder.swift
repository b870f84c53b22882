import CPNG

/// Decodes encoded images (PNG, JPEG) into RGB8 exactly as Pillow's
/// `Image.open(...).convert('RGB')` does.
public enum ImageDecoder {
    /// Decodes PNG bytes.
    public static func decode(_ bytes: [UInt8]) throws(LlavaError) -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let ok = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard ok != 0 else { throw LlavaError(.badImage, "not a readable PNG") }
        image.format = UInt32(PNG_FORMAT_RGB)
        let w = Int(image.width), h = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        let done = bytes.withUnsafeBytes { _ in
            pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        }
        png_image_free(&image)
        guard done != 0 else { throw LlavaError(.badImage, "corrupt PNG data") }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    /// Decodes the image file at `path`.
    public static func decodeFile(_ path: String) throws(LlavaError) -> RGBImage {
        try decode(readWholeFile(path, limit: 1 << 30))
    }
}
