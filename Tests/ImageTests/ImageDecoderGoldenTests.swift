import LlavaUHD
import TestSupport
import Testing

/// Every image of the golden set decodes to exactly Pillow's bytes: same size, same mode, and the
/// sha256 of the RGB8 pixels equal to that of Pillow's `Image.open(f).convert('RGB').tobytes()`
/// (reference: scripts/fixtures/make_image_golden.py with Pillow 13.0 / libjpeg-turbo 3.2; this decoder
/// runs Debian's libjpeg-turbo 2.1.5 and libpng 1.6.39). Tolerance: none, byte-exact.
@Suite struct ImageDecoderGoldenTests {
    private func check(origin: String) throws -> Int {
        let golden = try ImageGolden.load()
        var checked = 0
        for entry in golden["images"]?.arrayValue ?? [] where entry["origin"]?.stringValue == origin {
            let path = ImageGolden.path(of: entry)
            let name = entry["file"]?.stringValue ?? "?"
            let bytes = try readWholeFile(path)
            let header = try ImageDecoder.header(of: bytes)
            #expect(header.mode.rawValue == entry["mode"]?.stringValue, "\(name): Pillow mode")
            #expect(header.format.rawValue == entry["format"]?.stringValue, "\(name): format")
            let image = try ImageDecoder.decodeFile(path)
            #expect(image.width == entry["width"]?.intValue && image.height == entry["height"]?.intValue,
                    "\(name): size \(image.width)x\(image.height)")
            #expect(image.pixels.count == image.width * image.height * 3)
            #expect(SHA256.hex(image.pixels) == entry["sha256"]?.stringValue, "\(name): pixels differ from Pillow's")
            checked += 1
        }
        return checked
    }

    /// The derived images (committed): CMYK / Adobe CMYK / YCCK, grey, progressive, 4:2:0 / 4:2:2 /
    /// 4:4:4 at odd sizes, an 8:1 crop, restart markers, EXIF orientation, recoverable JPEG
    /// corruption; PNGs in every bit depth and colour type, palettes with tRNS, Adam7, filters.
    @Test func derivedImagesMatchPillow() throws {
        #expect(try check(origin: "derived") >= 60)
    }

    /// The golden set covers every mode Pillow opens a JPEG or PNG in.
    @Test func everyPillowModeIsCovered() throws {
        let modes = Set((try ImageGolden.load()["images"]?.arrayValue ?? []).compactMap { $0["mode"]?.stringValue })
        #expect(modes == Set(PillowMode.allCases.map(\.rawValue)))
    }

    /// The real photos and scans that scripts/setup-test-assets.sh fetches (scikit-image,
    /// matplotlib, imagemagick-6-doc), from the test-assets folder.
    @Test(.enabled(if: ImageGolden.haveAssets, "needs the test assets (LLAVAUHD_TEST_ASSETS)"))
    func realImagesMatchPillow() throws {
        #expect(try check(origin: "real") == 16)
    }

    @Test func pixelLimitIsPillows() throws {
        let golden = try ImageGolden.load()
        #expect(golden["max_pixels"]?.intValue == ImageLimits.pillowMaxPixels)
        #expect(ImageLimits.default.maxPixels == 178_956_970)
    }

    /// Decoding from memory and from the file give the same image, and `decode([UInt8])` agrees
    /// with the raw-buffer entry point.
    @Test func entryPointsAgree() throws {
        let path = ImageGolden.folder + "/derived/odd_420.jpg"
        let bytes = try readWholeFile(path)
        let fromFile = try ImageDecoder.decodeFile(path)
        let fromArray = try ImageDecoder.decode(bytes)
        let fromBuffer = try bytes.withUnsafeBytes { try ImageDecoder.decode($0) }
        #expect(fromFile == fromArray && fromArray == fromBuffer)
    }

    /// EXIF orientation 6 is not applied: the image keeps its stored 157x93 size (Pillow and
    /// upstream do not apply it either).
    @Test func exifOrientationIsIgnored() throws {
        let image = try ImageDecoder.decodeFile(ImageGolden.folder + "/derived/exif_orientation6.jpg")
        #expect(image.width == 157 && image.height == 93)
    }
}
