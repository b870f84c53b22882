import LlavaUHD
import TestSupport
import Testing

/// The pixel limit (decompression-bomb guard) and the I/O errors of the entry points.
@Suite struct ImageLimitsTests {
    private let odd420 = ImageGolden.folder + "/derived/odd_420.jpg"  // 157x93 = 14,601 pixels
    private let rgb8 = ImageGolden.folder + "/derived/rgb8.png"       // 61x47 = 2,867 pixels

    /// The limit is inclusive: an image of exactly `maxPixels` pixels decodes, one more does not.
    @Test func limitIsInclusive() throws {
        for (path, pixels) in [(odd420, 157 * 93), (rgb8, 61 * 47)] {
            let bytes = try readWholeFile(path)
            #expect(DecodeOutcome(bytes, limits: ImageLimits(maxPixels: pixels - 1)) == .failed(.imageTooLarge))
            let image = try ImageDecoder.decode(bytes, limits: ImageLimits(maxPixels: pixels))
            #expect(image.width * image.height == pixels)
        }
    }

    /// The limit is checked on the size the header declares, before the output is allocated:
    /// these files declare 65000x65000, 100000x100000 and 13380x13375 (= 178,957,500 pixels, 530
    /// over the limit) over a few dozen pixels of data.
    @Test(arguments: ["jpeg_huge.jpg", "png_huge.png", "jpeg_over_limit.jpg", "png_over_limit.png"])
    func declaredSizeOverTheLimitIsRefused(_ file: String) throws {
        let bytes = try readWholeFile(ImageGolden.folder + "/corrupt/" + file)
        let header = try ImageDecoder.header(of: bytes)
        #expect(header.width * header.height > ImageLimits.pillowMaxPixels)
        #expect(DecodeOutcome(bytes) == .failed(.imageTooLarge))
    }

    /// The check comes before any decoding (and the allocation right before it): files cut in
    /// their image data, which the decoder refuses as truncated (`.badImage`), give
    /// `.imageTooLarge` instead once the limit is below their declared size.
    @Test(arguments: ["jpeg_trunc_scan_10.jpg", "jpeg_progressive_trunc_50.jpg", "png_trunc_idat_50.png"])
    func limitIsCheckedBeforeDecoding(_ file: String) throws {
        let bytes = try readWholeFile(ImageGolden.folder + "/corrupt/" + file)
        let header = try ImageDecoder.header(of: bytes)
        let pixels = header.width * header.height
        #expect(DecodeOutcome(bytes, limits: ImageLimits(maxPixels: pixels)) == .failed(.badImage))
        #expect(DecodeOutcome(bytes, limits: ImageLimits(maxPixels: pixels - 1)) == .failed(.imageTooLarge))
    }

    @Test func zeroSizedImagesAreRejected() throws {
        for file in ["jpeg_zero_width.jpg", "jpeg_zero_height.jpg", "png_zero_width.png", "png_zero_height.png"] {
            #expect(DecodeOutcome(try readWholeFile(ImageGolden.folder + "/corrupt/" + file)) == .failed(.badImage))
        }
    }

    /// The status `decodeFile` throws for `path` (nil if it decodes).
    private func fileStatus(_ path: String) -> Status? {
        do {
            _ = try ImageDecoder.decodeFile(path)
            return nil
        } catch {
            return error.status
        }
    }

    @Test func unreadableFilesAreIOErrors() {
        #expect(fileStatus("/nonexistent/image.png") == .io)
        #expect(fileStatus(ImageGolden.folder) == .io)  // a directory
    }

    @Test func emptyFileIsBadImage() {
        let path = ImageGolden.folder + "/corrupt/empty.bin"
        #expect(fileStatus(path) == .badImage)
        #expect(throws: LlavaError(.badImage, "'\(path)': empty image data")) { try ImageDecoder.decodeFile(path) }
    }
}

/// `RGBImage(rgb8:width:height:rowStride:limits:)`: raw RGB8 pixels from a caller.
@Suite struct RGBImageRawBufferTests {
    /// A width×height test pattern with `stride` bytes per row; padding bytes are 0xEE.
    private func pattern(width: Int, height: Int, stride: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: (height - 1) * stride + width * 3)
        for y in 0..<height {
            for x in 0..<width * 3 { bytes[y * stride + x] = UInt8((y * 31 + x * 7) % 251) }
        }
        return bytes
    }

    @Test func packedRowsAreCopied() throws {
        let bytes = pattern(width: 5, height: 3, stride: 15)
        let image = try RGBImage(rgb8: bytes, width: 5, height: 3)
        #expect(image.width == 5 && image.height == 3 && image.pixels == bytes)
    }

    @Test func paddedRowsDropThePadding() throws {
        let padded = pattern(width: 5, height: 4, stride: 19)
        let image = try RGBImage(rgb8: padded, width: 5, height: 4, rowStride: 19)
        #expect(image.pixels == pattern(width: 5, height: 4, stride: 15))
        #expect(!image.pixels.contains(0xEE))
        // The last row needs no padding after it; one byte less is too short.
        #expect(padded.count == 3 * 19 + 15)
        #expect(throws: LlavaError(.invalidArgument, "an RGB buffer of 71 bytes is too small for 5x4 with row stride 19")) {
            try RGBImage(rgb8: Array(padded.dropLast()), width: 5, height: 4, rowStride: 19)
        }
    }

    @Test func invalidArgumentsAreRejected() {
        let bytes = [UInt8](repeating: 1, count: 300)
        func status(_ width: Int, _ height: Int, _ stride: Int?, _ limits: ImageLimits = .default,
                    _ buffer: [UInt8]? = nil) -> Status? {
            do {
                _ = try RGBImage(rgb8: buffer ?? bytes, width: width, height: height, rowStride: stride, limits: limits)
                return nil
            } catch {
                return error.status
            }
        }
        #expect(status(10, 10, nil) == nil)
        #expect(status(0, 10, nil) == .invalidArgument)
        #expect(status(10, -1, nil) == .invalidArgument)
        #expect(status(10, 10, 29) == .invalidArgument)          // stride < width · 3
        #expect(status(10, 11, nil) == .invalidArgument)         // 330 bytes needed
        #expect(status(10, 2, 200) == nil)                       // 200 + 30 ≤ 300
        #expect(status(10, 3, 200) == .invalidArgument)          // 400 + 30 > 300
        #expect(status(10, 1, nil, .default, []) == .invalidArgument)
        #expect(status(10, 10, nil, ImageLimits(maxPixels: 99)) == .imageTooLarge)
        #expect(status(Int.max, 2, nil) == .imageTooLarge)       // overflows
        #expect(status(1 << 40, 1 << 40, nil, ImageLimits(maxPixels: .max)) == .imageTooLarge)
        #expect(status(Int.max / 3, 1, nil, ImageLimits(maxPixels: .max)) == .invalidArgument)
        #expect(status(10, 1 << 40, 30, ImageLimits(maxPixels: .max)) == .invalidArgument)
    }

    @Test func decodedAndRawImagesCompareEqual() throws {
        let decoded = try ImageDecoder.decodeFile(ImageGolden.folder + "/derived/rgb8.png")
        let copy = try RGBImage(rgb8: decoded.pixels, width: decoded.width, height: decoded.height)
        #expect(copy == decoded)
    }
}
