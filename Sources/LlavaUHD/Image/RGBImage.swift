/// An 8-bit RGB image: `height` rows of `width` pixels, each pixel 3 bytes (R, G, B), rows
/// packed with no padding. This is what every decoder produces and what slicing consumes,
/// matching Pillow's `Image.convert('RGB')`.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width · height · 3` bytes, row-major.
    public var pixels: [UInt8]

    /// Wraps existing pixels. The caller guarantees `pixels.count == width · height · 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB buffer size does not match \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The pixels of the rectangle `x..<x+w`, `y..<y+h` (which must lie inside the image).
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(x >= 0 && y >= 0 && x + w <= width && y + h <= height, "crop outside the image")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<h {
                    let s = ((y + r) * width + x) * 3
                    UnsafeMutableRawPointer(dst.baseAddress! + r * w * 3)
                        .copyMemory(from: src.baseAddress! + s, byteCount: w * 3)
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}
