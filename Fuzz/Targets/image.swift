// libFuzzer target `image`: JPEG and PNG decoding from memory (ImageDecoder.header and
// ImageDecoder.decode, the path of luhd_image_load_memory), seeded with the JPEG and PNG files
// of Tests/Fixtures/images. The pixel limit is 4 Mpx so that one input costs at most ~12 MB and
// the fuzzer spends its time in the decoders' parsing, not in filling large images.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    _ = try? ImageDecoder.header(of: bytes)
    if let image = try? ImageDecoder.decode(bytes, limits: ImageLimits(maxPixels: 4_000_000)) {
        // A decoded image holds exactly width · height RGB8 pixels.
        if image.pixels.count != image.width * image.height * 3 { fatalError("image: pixel buffer size mismatch") }
    }
    return 0
}
