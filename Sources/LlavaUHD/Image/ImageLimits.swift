/// Limits applied to every image before its pixels are allocated (a decompression-bomb guard).
///
/// The check uses the size declared in the file's header, so a small file that claims to be
/// huge is rejected before any pixel memory is reserved or any image data is decoded.
public struct ImageLimits: Sendable, Equatable {
    /// Pillow's default error threshold: `2 · Image.MAX_IMAGE_PIXELS` = 2 · 89,478,485
    /// = 178,956,970 pixels. Above it Pillow raises `DecompressionBombError`; an image of exactly
    /// this many pixels is still accepted.
    public static let pillowMaxPixels = 178_956_970

    /// The largest accepted `width · height`; a larger image throws `.imageTooLarge`.
    /// At 3 bytes per RGB8 pixel the default allows about 537 MB of pixels.
    public var maxPixels: Int

    public init(maxPixels: Int = ImageLimits.pillowMaxPixels) {
        self.maxPixels = maxPixels
    }

    /// The default limits (`maxPixels` = 178,956,970, as Pillow).
    public static let `default` = ImageLimits()

    /// Checks a declared size: throws `.badImage` for a zero dimension and `.imageTooLarge` when
    /// `width · height` exceeds `maxPixels` (or overflows). Returns the RGB8 byte count.
    func checkedRGBByteCount(width: Int, height: Int, what: String) throws(LlavaError) -> Int {
        guard width > 0, height > 0 else {
            throw LlavaError(.badImage, "\(what) has a zero size (\(width)x\(height))")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else {
            throw LlavaError(.imageTooLarge, "\(what) is \(width)x\(height) pixels, more than the limit of \(maxPixels) pixels")
        }
        let (bytes, overflow3) = pixels.multipliedReportingOverflow(by: 3)
        guard !overflow3 else {
            throw LlavaError(.imageTooLarge, "\(what) is \(width)x\(height) pixels, too large to address")
        }
        return bytes
    }
}
