extension RGBImage {
    /// Copies an image from raw RGB8 pixels: `height` rows of `width` pixels (R, G, B bytes),
    /// row `y` starting at byte `y · rowStride` (`rowStride` defaults to `width · 3`, packed).
    ///
    /// Throws `.invalidArgument` when a size is not positive, `rowStride < width · 3`, or
    /// `bytes` is shorter than `(height − 1) · rowStride + width · 3`; `.imageTooLarge` when
    /// `width · height` exceeds `limits.maxPixels`.
    public init(rgb8 bytes: UnsafeRawBufferPointer, width: Int, height: Int, rowStride: Int? = nil,
                limits: ImageLimits = .default) throws(LlavaError) {
        guard width > 0, height > 0 else {
            throw LlavaError(.invalidArgument, "RGB image size must be positive, got \(width)x\(height)")
        }
        let byteCount = try limits.checkedRGBByteCount(width: width, height: height, what: "the RGB image")
        let packedRow = width * 3
        let stride = rowStride ?? packedRow
        guard stride >= packedRow else {
            throw LlavaError(.invalidArgument, "row stride \(stride) is less than width × 3 = \(packedRow) bytes")
        }
        let (span, overflow) = (height - 1).multipliedReportingOverflow(by: stride)
        guard !overflow, span <= bytes.count - packedRow, bytes.count >= packedRow else {
            throw LlavaError(.invalidArgument, "an RGB buffer of \(bytes.count) bytes is too small for \(width)x\(height) with row stride \(stride)")
        }
        guard let source = bytes.baseAddress else {
            throw LlavaError(.invalidArgument, "no RGB buffer")
        }
        let pixels: [UInt8] = try Allocation.array(count: byteCount, what: "a \(width)x\(height) RGB image") { buffer in
            let destination = UnsafeMutableRawPointer(buffer.baseAddress!)
            if stride == packedRow {
                destination.copyMemory(from: source, byteCount: byteCount)
            } else {
                for y in 0..<height {
                    (destination + y * packedRow).copyMemory(from: source + y * stride, byteCount: packedRow)
                }
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// Copies an image from raw RGB8 pixels in an array (see the buffer variant).
    public init(rgb8 bytes: [UInt8], width: Int, height: Int, rowStride: Int? = nil,
                limits: ImageLimits = .default) throws(LlavaError) {
        let result: Result<RGBImage, LlavaError> = bytes.withUnsafeBytes { raw in
            do throws(LlavaError) {
                return .success(try RGBImage(rgb8: raw, width: width, height: height, rowStride: rowStride, limits: limits))
            } catch { return .failure(error) }
        }
        self = try result.get()
    }
}
