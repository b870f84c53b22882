import LlavaUHD
import TestSupport
import Testing

/// Corrupt, truncated and unsupported inputs. Each returns a status (never a crash: the tests run
/// in one process, so a crash in libjpeg/libpng or the C glue would end the whole run), and the
/// status follows Pillow: where Pillow raises, the decoder throws `.badImage` (or
/// `.imageTooLarge` where Pillow raises DecompressionBombError); where Pillow still decodes the
/// file, the decoder gives the same pixels; the few deliberate differences are listed in
/// golden.json with the reason (`deviation`).
///
/// Leaks and memory errors: `swift test --sanitize=address --filter ImageDecoder` runs these
/// under AddressSanitizer + LeakSanitizer, which find nothing in the decoders (the one report,
/// 144 bytes, is held by XCTest's own runner, before these tests start).
@Suite struct ImageDecoderCorruptInputTests {
    /// The expected outcome of a golden "corrupt" entry.
    private func expected(_ entry: JSONValue) -> DecodeOutcome? {
        if let deviation = entry["deviation"] {
            return ImageGolden.status(named: deviation["status"]?.stringValue).map { .failed($0) }
        }
        guard let pillow = entry["pillow"] else { return nil }
        if pillow["ok"]?.boolValue == true {
            guard let w = pillow["width"]?.intValue, let h = pillow["height"]?.intValue,
                  let sha = pillow["sha256"]?.stringValue else { return nil }
            return .decoded(width: w, height: h, sha256: sha)
        }
        return ImageGolden.status(named: pillow["status"]?.stringValue).map { .failed($0) }
    }

    @Test func corruptFilesFailAsDocumented() throws {
        let golden = try ImageGolden.load()
        let entries = golden["corrupt"]?.arrayValue ?? []
        #expect(entries.count >= 40)
        for entry in entries {
            let name = entry["file"]?.stringValue ?? "?"
            let want = try #require(expected(entry), "\(name): malformed golden entry")
            let got = DecodeOutcome(try readWholeFile(ImageGolden.path(of: entry)))
            #expect(got == want, "\(name) (\(entry["how"]?.stringValue ?? "")): \(got), expected \(want)")
        }
    }

    /// Errors carry the decoder's own words.
    @Test func messagesNameTheProblem() throws {
        func message(_ file: String) throws -> String {
            do {
                _ = try ImageDecoder.decode(try readWholeFile(ImageGolden.folder + "/corrupt/" + file))
                return "decoded"
            } catch {
                return error.message
            }
        }
        #expect(try message("jpeg_trunc_scan_50.jpg").hasPrefix("truncated JPEG: image file is truncated"))
        #expect(try message("jpeg_bad_huffman_table.jpg") == "corrupt JPEG: Bogus Huffman table definition")
        #expect(try message("png_bad_ihdr_crc.png") == "corrupt PNG: IHDR: CRC error")
        #expect(try message("png_trunc_idat_50.png").hasPrefix("truncated PNG: image file is truncated"))
        #expect(try message("unsupported.gif") == "GIF images are not supported (only JPEG and PNG)")
        #expect(try message("empty.bin") == "empty image data")
        #expect(try message("garbage.bin") == "unknown image format (neither JPEG nor PNG)")
        #expect(try message("jpeg_huge.jpg").contains("65000x65000"))
    }

    /// Every prefix of four small files (baseline and progressive JPEG, RGB and interlaced palette
    /// PNG): the decoder accepts exactly the prefixes Pillow accepts, with the same pixels, and
    /// refuses the others with `.badImage`. The one recorded difference: a PNG cut inside the last
    /// few bytes of its final IDAT chunk (after the last row's data) is refused here, decoded by
    /// Pillow (see `deviation` in golden.json).
    @Test func everyPrefixBehavesLikePillow() throws {
        let golden = try ImageGolden.load()
        let sweeps = golden["prefix_sweeps"]?.arrayValue ?? []
        #expect(sweeps.count == 4)
        for sweep in sweeps {
            let name = sweep["file"]?.stringValue ?? "?"
            let data = try readWholeFile(ImageGolden.folder + "/" + name)
            #expect(data.count == sweep["length"]?.intValue)
            let decodes = sweep["pillow_decodes"]
            let width = try #require(sweep["width"]?.intValue), height = try #require(sweep["height"]?.intValue)
            let refuseBelow = sweep["deviation"]?["below"]?.intValue ?? 0
            var deviations = 0
            for n in 0...data.count {
                let pillowSHA = decodes?[String(n)]?.stringValue
                var want = DecodeOutcome.failed(.badImage)
                if let pillowSHA {
                    if n >= refuseBelow {
                        want = .decoded(width: width, height: height, sha256: pillowSHA)
                    } else {
                        deviations += 1
                    }
                }
                let got = DecodeOutcome(Array(data[..<n]))
                #expect(got == want, "\(name) cut to \(n) bytes: \(got), expected \(want)")
            }
            #expect(deviations <= 12, "\(name): \(deviations) prefixes Pillow decodes and this decoder refuses")
            #expect(decodes?[String(data.count)] != nil, "\(name): Pillow decodes the whole file")
        }
    }

    /// Random damage to valid files (byte flips, cuts, inserted bytes; fixed seed): every result
    /// is an image of the declared size or `.badImage` / `.imageTooLarge`, and the process lives on.
    /// (Damaged JPEGs often still decode, as libjpeg recovers from bad entropy data; damaged PNGs
    /// almost never do, as zlib and the chunk CRCs catch the damage.)
    @Test(arguments: ["odd_420.jpg", "progressive.jpg", "cmyk_adobe.jpg", "grey_progressive.jpg",
                      "restart_markers.jpg", "grey16_interlaced.png", "palette4.png", "rgba16.png",
                      "greyalpha8_interlaced.png"])
    func survivesRandomDamage(_ file: String) throws {
        let original = try readWholeFile(ImageGolden.folder + "/derived/" + file)
        var rng = TestRandom(seed: UInt64(truncatingIfNeeded: file.utf8.reduce(17) { $0 &* 31 &+ Int($1) }))
        for round in 0..<250 {
            var data = original
            switch round % 3 {
            case 0:
                for _ in 0..<(1 + rng.next(4)) {
                    let i = rng.next(data.count)
                    data[i] = UInt8(truncatingIfNeeded: rng.next(256))
                }
            case 1:
                data.removeLast(rng.next(data.count))
                let i = rng.next(max(data.count, 1))
                if i < data.count { data[i] ^= 0xFF }
            default:
                let i = rng.next(data.count)
                data.insert(contentsOf: (0..<(1 + rng.next(16))).map { _ in UInt8(truncatingIfNeeded: rng.next(256)) }, at: i)
            }
            do {
                let image = try ImageDecoder.decode(data, limits: ImageLimits(maxPixels: 1 << 22))
                #expect(image.pixels.count == image.width * image.height * 3 && image.width > 0 && image.height > 0)
            } catch {
                #expect(error.status == .badImage || error.status == .imageTooLarge, "\(file) round \(round): \(error)")
            }
        }
    }
}

