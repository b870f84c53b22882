import LlavaUHD
import TestSupport
import Testing

/// `PillowResample` against Pillow itself: Tests/Fixtures/pillow (made by
/// scripts/fixtures/make_pillow_fixtures.py with `Image.resize(size, BICUBIC)`; cases.json names the
/// Pillow version) and the upstream cases' views (made by upstream's slicing code).
@Suite struct PillowResampleTests {
    static let dir = Fixtures.root + "/pillow"

    static func cases() throws -> [JSONValue] {
        try #require(Fixtures.json(dir + "/cases.json")["cases"]?.arrayValue)
    }

    /// Number of bytes that differ.
    static func differences(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).reduce(0) { $0 + ($1.0 == $1.1 ? 0 : 1) } + abs(a.count - b.count)
    }

    @Test func everyCaseIsBitExact() throws {
        let source = try ImageDecoder.decodeFile(Self.dir + "/source.png")
        let cases = try Self.cases()
        #expect(cases.count >= 10)
        for c in cases {
            let name = try #require(c["name"]?.stringValue)
            let crop = try #require(c["crop_xywh"]?.arrayValue).compactMap(\.intValue)
            let (w, h) = try #require(UpstreamCaseFiles.pair(c["size_wh"]))
            let expected = try NPYArray(path: Self.dir + "/" + (try #require(c["file"]?.stringValue)))
            #expect(expected.shape == [h, w, 3])
            let input = source.cropped(x: crop[0], y: crop[1], width: crop[2], height: crop[3])
            for threads in [1, 2] {
                let out = try PillowResample.bicubic(input, to: PixelSize(width: w, height: h), threads: threads)
                #expect(out.width == w && out.height == h)
                let diff = Self.differences(out.pixels, expected.uint8)
                #expect(diff == 0, "\(name) (\(threads) threads): \(diff) bytes differ")
            }
        }
    }

    /// The pass order matters (each pass rounds to 8 bits): the cases where Pillow ≥ 13 runs
    /// the vertical pass first must differ from the horizontal-first result somewhere, so that
    /// the test above really checks the order.
    @Test func passOrderIsObservable() throws {
        let source = try ImageDecoder.decodeFile(Self.dir + "/source.png")
        var discriminating = 0
        for c in try Self.cases() {
            let crop = try #require(c["crop_xywh"]?.arrayValue).compactMap(\.intValue)
            let (w, h) = try #require(UpstreamCaseFiles.pair(c["size_wh"]))
            guard crop[3] - h > 0, crop[3] - h > (crop[2] - w) * 2, w != crop[2] else { continue }
            let input = source.cropped(x: crop[0], y: crop[1], width: crop[2], height: crop[3])
            let size = PixelSize(width: w, height: h)
            let a = try PillowResample.bicubic(input, to: size, order: .adaptive)
            let b = try PillowResample.bicubic(input, to: size, order: .horizontalFirst)
            if a != b { discriminating += 1 }
        }
        #expect(discriminating >= 2)
    }

    @Test func unchangedSizeIsACopyAndBadSizesThrow() throws {
        let source = try ImageDecoder.decodeFile(Self.dir + "/source.png")
        let same = try PillowResample.bicubic(source, to: PixelSize(width: source.width, height: source.height))
        #expect(same == source)
        #expect(throws: LlavaError.self) { try PillowResample.bicubic(source, to: PixelSize(width: 0, height: 5)) }
        let empty = RGBImage(width: 0, height: 0, pixels: [])
        #expect(throws: LlavaError.self) { try PillowResample.bicubic(empty, to: PixelSize(width: 3, height: 3)) }
    }
}
