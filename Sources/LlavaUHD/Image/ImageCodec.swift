import CLlavaUHD

/// The C decoders (Sources/CLlavaUHD: jpeg_decoder.c over libjpeg, png_decoder.c over libpng)
/// behind one Swift shape: read the header, then decode into an RGB8 buffer allocated here.
/// libjpeg and libpng report errors by longjmp, which Swift cannot catch, so all their calls
/// stay in C; what crosses over is a status code and a message.
struct ImageCodec {
    let format: ImageFormat
    /// The decoder's entry point (image_codec.h): the header only with a nil output buffer, the
    /// whole image with one.
    let run: luhd_image_decode_fn

    static func forFormat(_ format: ImageFormat) -> ImageCodec {
        switch format {
        case .jpeg: ImageCodec(format: .jpeg, run: luhd_jpeg_decode)
        case .png: ImageCodec(format: .png, run: luhd_png_decode)
        }
    }

    /// Parses the header of `bytes` (non-empty).
    func header(_ bytes: UnsafeRawBufferPointer) throws(LlavaError) -> ImageHeader {
        var info = luhd_image_info()
        var message = [CChar](repeating: 0, count: Int(LUHD_IMAGE_MESSAGE_CAPACITY))
        let status = message.withUnsafeMutableBufferPointer { text in
            run(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &info, nil, 0, text.baseAddress)
        }
        try check(status, message)
        guard let mode = PillowMode.fromC(info.mode) else {
            throw LlavaError(.internal, "\(format.rawValue) decoder reported an unknown mode \(info.mode)")
        }
        return ImageHeader(format: format, width: Int(info.width), height: Int(info.height), mode: mode,
                           progressive: info.progressive != 0)
    }

    /// Decodes `bytes`, whose header is `header`, into `byteCount` = width · height · 3 bytes
    /// (more than 0: `ImageLimits.checkedRGBByteCount`, so the buffer is never nil).
    func decode(_ bytes: UnsafeRawBufferPointer, header: ImageHeader, byteCount: Int) throws(LlavaError) -> RGBImage {
        var message = [CChar](repeating: 0, count: Int(LUHD_IMAGE_MESSAGE_CAPACITY))
        var status = LUHD_IMAGE_OK
        // UInt8 needs no initialisation; on failure the array is dropped right away.
        let pixels: [UInt8] = try Allocation.array(count: byteCount,
                                                   what: "a \(header.width)x\(header.height) \(format.rawValue) image") { buffer in
            status = message.withUnsafeMutableBufferPointer { text in
                run(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, nil,
                    buffer.baseAddress, byteCount, text.baseAddress)
            }
        }
        try check(status, message)
        return RGBImage(width: header.width, height: header.height, pixels: pixels)
    }

    private func check(_ status: luhd_image_status, _ message: [CChar]) throws(LlavaError) {
        if status == LUHD_IMAGE_OK { return }
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let name = format.rawValue
        switch status {
        case LUHD_IMAGE_TRUNCATED: throw LlavaError(.badImage, "truncated \(name): \(text)")
        case LUHD_IMAGE_NO_MEMORY: throw LlavaError(.outOfMemory, "\(name): \(text)")
        case LUHD_IMAGE_BAD_OUTPUT: throw LlavaError(.internal, "\(name): \(text)")
        default: throw LlavaError(.badImage, "corrupt \(name): \(text)")
        }
    }
}

extension PillowMode {
    /// The mode for a C `luhd_pil_mode` value.
    static func fromC(_ value: Int32) -> PillowMode? {
        switch value {
        case Int32(LUHD_PIL_1.rawValue): .bilevel
        case Int32(LUHD_PIL_L.rawValue): .grey
        case Int32(LUHD_PIL_P.rawValue): .palette
        case Int32(LUHD_PIL_RGB.rawValue): .rgb
        case Int32(LUHD_PIL_RGBA.rawValue): .rgba
        case Int32(LUHD_PIL_LA.rawValue): .greyAlpha
        case Int32(LUHD_PIL_I16.rawValue): .grey16
        case Int32(LUHD_PIL_CMYK.rawValue): .cmyk
        default: nil
        }
    }
}
