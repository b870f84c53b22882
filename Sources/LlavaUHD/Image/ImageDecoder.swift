/// Decodes encoded images (JPEG, PNG) into RGB8 exactly as upstream's Pillow
/// `Image.open(...).convert('RGB')` does: the same pixels, byte for byte (checked against
/// Pillow 13 with its bundled libjpeg-turbo 3.2 on the golden set in Tests/Fixtures/images).
///
/// * JPEG (libjpeg-turbo): baseline, progressive, arithmetic, any chroma subsampling; 1
///   component (grey), 3 (YCbCr or RGB) or 4 (CMYK / YCCK, read as Adobe-inverted CMYK and
///   converted with Pillow's formula); islow DCT and fancy upsampling as in Pillow.
/// * PNG (libpng): every bit depth and colour type, palettes, Adam7. Alpha is dropped, not
///   composited; grey and palettes expand to RGB; 16-bit samples keep their high byte, except
///   16-bit grey, which Pillow opens as "I;16" and clips at 255. Gamma, ICC profiles and tRNS
///   are ignored.
/// * EXIF orientation is not applied (upstream does not apply it).
/// * The format comes from the first bytes, never from a file name.
///
/// Errors: `.badImage` for an unknown format or a corrupt or truncated file (with the
/// decoder's message; a JPEG that ends early is an error, as in Pillow, not grey padding),
/// `.imageTooLarge` when the declared size exceeds `limits.maxPixels` (checked from the header,
/// before any pixel memory is allocated), `.io` when a file cannot be read.
///
/// Where this decoder and Pillow part ways (all on damaged or rare files, listed with reasons in
/// Tests/Fixtures/images/golden.json): a PNG whose zlib stream ends early on a row boundary
/// (Pillow fills the missing rows with zeros), a PNG cut inside the last bytes of its final
/// IDAT chunk after the last row's data, and a palette PNG without PLTE are `.badImage` here;
/// lossless JPEGs (SOF3), which Pillow's bundled libjpeg-turbo 3 decodes, are `.badImage` with
/// Debian's libjpeg-turbo 2.1.5; formats other than JPEG and PNG are not decoded.
///
/// All entry points are safe to call from any number of threads at once.
public enum ImageDecoder {
    /// Reads the header of an encoded image: format, declared size (not checked against any
    /// limit), Pillow mode. Throws `.badImage` like `decode`.
    public static func header(of bytes: UnsafeRawBufferPointer) throws(LlavaError) -> ImageHeader {
        try codec(for: bytes).header(bytes)
    }

    /// Reads the header of an encoded image.
    public static func header(of bytes: [UInt8]) throws(LlavaError) -> ImageHeader {
        let result: Result<ImageHeader, LlavaError> = bytes.withUnsafeBytes { raw in
            do throws(LlavaError) { return .success(try header(of: raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Decodes an encoded image held in memory.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limits: ImageLimits = .default) throws(LlavaError) -> RGBImage {
        let codec = try codec(for: bytes)
        let header = try codec.header(bytes)
        let byteCount = try limits.checkedRGBByteCount(width: header.width, height: header.height,
                                                       what: "the \(codec.format.rawValue) image")
        return try codec.decode(bytes, header: header, byteCount: byteCount)
    }

    /// Decodes an encoded image held in memory.
    public static func decode(_ bytes: [UInt8], limits: ImageLimits = .default) throws(LlavaError) -> RGBImage {
        let result: Result<RGBImage, LlavaError> = bytes.withUnsafeBytes { raw in
            do throws(LlavaError) { return .success(try decode(raw, limits: limits)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Decodes the image file at `path` (memory-mapped, not copied).
    public static func decodeFile(_ path: String, limits: ImageLimits = .default) throws(LlavaError) -> RGBImage {
        let file = try MappedFile(path: path)
        do {
            return try decode(file.bytes, limits: limits)
        } catch {
            throw LlavaError(error.status, "'\(path)': \(error.message)")
        }
    }

    private static func codec(for bytes: UnsafeRawBufferPointer) throws(LlavaError) -> ImageCodec {
        if let format = ImageFormat.detect(bytes) { return ImageCodec.forFormat(format) }
        if bytes.isEmpty { throw LlavaError(.badImage, "empty image data") }
        if let other = ImageFormat.otherFormatName(bytes) {
            throw LlavaError(.badImage, "\(other) images are not supported (only JPEG and PNG)")
        }
        throw LlavaError(.badImage, "unknown image format (neither JPEG nor PNG)")
    }
}
