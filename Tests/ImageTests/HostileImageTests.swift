@testable import LlavaUHD
import TestSupport
import Testing

/// Inputs built to take the host down (issue 12): sizes that cannot be allocated, pre-resize
/// targets far beyond the image, JPEGs with thousands of scans. Each must end in a status.
@Suite struct HostileImageTests {
    /// CRC-32 (ISO-HDLC, as PNG chunks use it).
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let body = Array(type.utf8) + data
        return be(UInt32(data.count)) + body + be(crc32(body))
    }

    /// A PNG whose header declares `width`x`height` 8-bit RGB over a few bytes of image data.
    static func hugePNG(width: UInt32, height: UInt32) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
        // A zlib stream of a few zero bytes (stored block): far too short for the image.
        let idat: [UInt8] = [0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", [])
    }

    /// 2147483647x1073741824 RGB is 6.9·10^18 bytes: with the pixel limit raised to the
    /// maximum, the output cannot be allocated and the call says so instead of aborting.
    @Test func unaddressablePNGIsOutOfMemory() throws {
        let bytes = Self.hugePNG(width: 2_147_483_647, height: 1_073_741_824)
        let header = try ImageDecoder.header(of: bytes)
        #expect(header.width == 2_147_483_647 && header.height == 1_073_741_824)
        #expect(DecodeOutcome(bytes, limits: ImageLimits(maxPixels: Int.max)) == .failed(.outOfMemory))
    }

    /// 100000x100000 RGB (30 GB) with a raised limit: no abort. Where the system refuses the
    /// 30 GB the status is `.outOfMemory`; where it grants them, the decoder meets the end of the
    /// data in the first rows (`.badImage`).
    @Test func hugeDeclaredPNGEndsInAStatus() throws {
        for bytes in [Self.hugePNG(width: 100_000, height: 100_000),
                      try readWholeFile(ImageGolden.folder + "/corrupt/png_huge.png")] {
            let outcome = DecodeOutcome(bytes, limits: ImageLimits(maxPixels: Int.max))
            #expect(outcome == .failed(.outOfMemory) || outcome == .failed(.badImage), "\(outcome)")
        }
    }

    /// The fallible allocation refuses sizes that overflow or cannot be had.
    @Test func allocationHelperRefusesWhatCannotBeHad() throws {
        do {
            _ = try Allocation.byteCount(Int.max, of: Float.self, what: "x")
            Issue.record("Int.max floats were counted")
        } catch {
            #expect(error.status == .outOfMemory)
        }
        do {
            _ = try Allocation.array(repeating: UInt8(0), count: Int.max / 2 - 1, what: "a test buffer")
            Issue.record("an allocation of 4.6·10^18 bytes succeeded")
        } catch {
            #expect(error.status == .outOfMemory)
        }
        let small: [UInt8] = try Allocation.array(count: 3, what: "three bytes") { b in
            for i in 0..<3 { b[i] = UInt8(i) }
        }
        #expect(small == [0, 1, 2])
    }

    /// A 1x1 image pre-resized to a long side of 32768 would need a 32768x32768 (3.2 GB)
    /// intermediate: the plan refuses it before any pixel is allocated. Ordinary pre-resizes of
    /// small images still plan.
    @Test func preresizeFarBeyondTheImageIsRefused() throws {
        let options = SlicingOptions(preresizeLongSide: 32768)
        do {
            _ = try SlicePlan(inputSize: PixelSize(width: 1, height: 1), options: options)
            Issue.record("a 32768x32768 pre-resize was planned")
        } catch {
            #expect(error.status == .imageTooLarge)
        }
        let image = try RGBImage(rgb8: [10, 20, 30], width: 1, height: 1)
        #expect(throws: LlavaError.self) { _ = try ViewPreprocessor(options: options).pixels(of: image) }
        let plan = try SlicePlan(inputSize: PixelSize(width: 1, height: 1), options: SlicingOptions(preresizeLongSide: 1536))
        #expect(plan.resizedSize == PixelSize(width: 1536, height: 1536))
        // 13377 = ⌊√178956970⌋: the largest square pre-resize of a 1x1 image within the limit.
        _ = try SlicePlan(inputSize: PixelSize(width: 1, height: 1), options: SlicingOptions(preresizeLongSide: 13377))
        #expect(throws: LlavaError.self) {
            _ = try SlicePlan(inputSize: PixelSize(width: 1, height: 1), options: SlicingOptions(preresizeLongSide: 13378))
        }
    }

    /// The byte offsets of the SOS markers of a JPEG (scanning entropy-coded data, where 0xFF is
    /// always followed by 0x00 or a restart marker).
    static func scanStarts(_ b: [UInt8]) -> [Int] {
        var out: [Int] = []
        var i = 2
        while i + 1 < b.count {
            guard b[i] == 0xFF else { i += 1; continue }
            let m = b[i + 1]
            if m == 0x00 || m == 0xFF || (0xD0...0xD7).contains(m) { i += 1; continue }
            if m == 0xD9 { break }
            if m == 0xDA { out.append(i) }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            i += 2 + length
            if m == 0xDA {  // skip the entropy-coded data
                while i + 1 < b.count, !(b[i] == 0xFF && b[i + 1] != 0x00 && !(0xD0...0xD7).contains(b[i + 1])) { i += 1 }
            }
        }
        return out
    }

    /// A progressive JPEG whose last scan is repeated until it has `scans` scans (libjpeg takes
    /// a repeated refinement scan as a recoverable "bogus progression" and keeps going).
    static func manyScanJPEG(scans: Int) throws -> [UInt8] {
        let bytes = try readWholeFile(ImageGolden.folder + "/derived/grey_progressive.jpg")
        let starts = scanStarts(bytes)
        let last = try #require(starts.last)
        let end = try #require(bytes.lastIndex(of: 0xD9)) - 1  // the EOI marker
        let scan = Array(bytes[last..<end])
        var out = Array(bytes[..<end])
        for _ in 0..<(scans - starts.count) { out += scan }
        return out + [0xFF, 0xD9]
    }

    /// Past 500 scans a JPEG is refused (`.badImage`, naming the limit) instead of costing time
    /// in proportion to its scan count; 500 scans still decode.
    @Test func jpegWithThousandsOfScansIsRefused() throws {
        let original = try readWholeFile(ImageGolden.folder + "/derived/grey_progressive.jpg")
        #expect(Self.scanStarts(original).count > 1)
        let atLimit = try Self.manyScanJPEG(scans: 500)
        #expect(Self.scanStarts(atLimit).count == 500)
        let decoded = DecodeOutcome(atLimit)
        if case .decoded = decoded {} else { Issue.record("500 scans: \(decoded)") }
        let tooMany = try Self.manyScanJPEG(scans: 3000)
        do {
            _ = try ImageDecoder.decode(tooMany)
            Issue.record("a JPEG with 3000 scans decoded")
        } catch {
            #expect(error.status == .badImage)
            #expect(error.message.contains("500 scans"))
        }
    }
}
