import CLlavaUHD

/// What a `luhd_image` handle points at.
final class ImageHandle: @unchecked Sendable {
    let image: RGBImage
    init(_ image: RGBImage) { self.image = image }
}

@_cdecl("luhd_image_load_default_params")
public func luhd_image_load_default_params() -> luhd_image_load_params {
    luhd_image_load_params(struct_size: MemoryLayout<luhd_image_load_params>.size,
                           max_pixels: Int64(ImageLimits.default.maxPixels))
}

private func limits(_ params: UnsafePointer<luhd_image_load_params>?) throws(LlavaError) -> ImageLimits {
    let p = try readParams(params, defaults: luhd_image_load_default_params(), name: "params")
    guard p.max_pixels > 0 else { throw LlavaError(.invalidArgument, "params->max_pixels is \(p.max_pixels); it must be positive") }
    return ImageLimits(maxPixels: Int(p.max_pixels))
}

@_cdecl("luhd_image_load_file")
public func luhd_image_load_file(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<luhd_image_load_params>?,
                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_image_load_file") { () throws(LlavaError) in
        let out = try nonNull(out, "out_image")
        let path = try stringArgument(path, "path")
        let image = try ImageDecoder.decodeFile(path, limits: limits(params))
        out.pointee = retainedHandle(ImageHandle(image))
    }
}

@_cdecl("luhd_image_load_memory")
public func luhd_image_load_memory(_ data: UnsafeRawPointer?, _ size: UInt, _ params: UnsafePointer<luhd_image_load_params>?,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_image_load_memory") { () throws(LlavaError) in
        let out = try nonNull(out, "out_image")
        let data = try nonNull(data, "data")
        let count = try byteCount(size, "size")
        let image = try ImageDecoder.decode(UnsafeRawBufferPointer(start: data, count: count), limits: limits(params))
        out.pointee = retainedHandle(ImageHandle(image))
    }
}

@_cdecl("luhd_image_from_rgb")
public func luhd_image_from_rgb(_ rgb: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32, _ stride: UInt,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> luhd_status {
    cCall("luhd_image_from_rgb") { () throws(LlavaError) in
        let out = try nonNull(out, "out_image")
        let rgb = try nonNull(rgb, "rgb")
        guard width > 0, height > 0 else {
            throw LlavaError(.invalidArgument, "image size must be positive, got \(width)x\(height)")
        }
        let givenStride = try byteCount(stride, "stride")
        let rowStride = givenStride == 0 ? Int(width) * 3 : givenStride
        guard rowStride >= Int(width) * 3 else {
            throw LlavaError(.invalidArgument, "stride \(stride) is less than width × 3 = \(Int(width) * 3) bytes")
        }
        // The caller promises height rows of `stride` bytes (the last one needs only width × 3).
        let (span, overflow) = (Int(height) - 1).multipliedReportingOverflow(by: rowStride)
        guard !overflow, span <= Int.max - Int(width) * 3 else {
            throw LlavaError(.imageTooLarge, "\(width)x\(height) with stride \(stride) overflows")
        }
        let image = try RGBImage(rgb8: UnsafeRawBufferPointer(start: rgb, count: span + Int(width) * 3),
                                 width: Int(width), height: Int(height), rowStride: rowStride)
        out.pointee = retainedHandle(ImageHandle(image))
    }
}

@_cdecl("luhd_image_size")
public func luhd_image_size(_ handle: OpaquePointer?, _ width: UnsafeMutablePointer<Int32>?,
                            _ height: UnsafeMutablePointer<Int32>?) -> luhd_status {
    cCall("luhd_image_size") { () throws(LlavaError) in
        let image = try object(handle, as: ImageHandle.self, "image").image
        width?.pointee = try int32Field(image.width, "width")
        height?.pointee = try int32Field(image.height, "height")
    }
}

@_cdecl("luhd_image_rgb")
public func luhd_image_rgb(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?) -> luhd_status {
    cCall("luhd_image_rgb") { () throws(LlavaError) in
        let out = try nonNull(out, "out_rgb")
        let h = try object(handle, as: ImageHandle.self, "image")
        // The array's storage is immutable and owned by the handle, so its address is stable.
        out.pointee = h.image.pixels.withUnsafeBufferPointer { $0.baseAddress }
    }
}

@_cdecl("luhd_image_free")
public func luhd_image_free(_ handle: OpaquePointer?) {
    releaseHandle(handle, as: ImageHandle.self)
}
