/// The mode Pillow opens an image in (`Image.open(f).mode`). It decides how the image becomes
/// RGB under `convert('RGB')`; the raw values are Pillow's mode names.
public enum PillowMode: String, Sendable, CaseIterable {
    /// "1": 1-bit black and white (PNG grey, 1 bit).
    case bilevel = "1"
    /// "L": 8-bit grey (JPEG with 1 component, PNG grey at 2, 4 or 8 bits).
    case grey = "L"
    /// "P": palette indices (PNG colour type 3).
    case palette = "P"
    /// "RGB" (JPEG with 3 components, PNG RGB at 8 or 16 bits).
    case rgb = "RGB"
    /// "RGBA" (PNG RGBA at 8 or 16 bits, and PNG grey + alpha at 16 bits).
    case rgba = "RGBA"
    /// "LA": grey + alpha (PNG grey + alpha at 8 bits).
    case greyAlpha = "LA"
    /// "I;16": 16-bit grey (PNG grey, 16 bits); `convert('RGB')` clips it at 255.
    case grey16 = "I;16"
    /// "CMYK" (JPEG with 4 components, read as Adobe-inverted CMYK).
    case cmyk = "CMYK"
}

/// What an encoded image's header declares.
public struct ImageHeader: Sendable, Equatable {
    public let format: ImageFormat
    /// Size in pixels, as declared (not yet checked against `ImageLimits`).
    public let width: Int
    public let height: Int
    /// The mode Pillow would open the image in.
    public let mode: PillowMode
    /// Progressive JPEG or Adam7-interlaced PNG.
    public let progressive: Bool
}
