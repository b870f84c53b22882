import LlavaUHD
import TestSupport

/// The golden set written by scripts/fixtures/make_image_golden.py (Pillow 13 + its bundled
/// libjpeg-turbo 3.2): Tests/Fixtures/images/golden.json and the derived and corrupt files next
/// to it. Real images are read from the test-assets folder; derived images are crops / resizes /
/// re-encodings of them made by the generator (golden entries with `"origin": "derived"`).
enum ImageGolden {
    static let folder = Fixtures.root + "/images"

    static func load() throws -> JSONValue {
        try Fixtures.json(folder + "/golden.json")
    }

    /// Where a golden entry's file is: real images under the assets folder, the others here.
    static func path(of entry: JSONValue) -> String {
        let file = entry["file"]?.stringValue ?? ""
        return entry["origin"]?.stringValue == "real" ? Fixtures.assets + "/" + file : folder + "/" + file
    }

    /// True when the real images of the assets folder are present.
    static var haveAssets: Bool { fileExists(Fixtures.assets + "/images/rocket.jpg") }

    /// The status named in golden.json ("badImage", "imageTooLarge").
    static func status(named name: String?) -> Status? {
        Status.allCases.first { String(describing: $0) == name }
    }
}

/// What decoding some bytes gave: the pixels' digest and size, or the error status.
enum DecodeOutcome: Equatable, CustomStringConvertible {
    case decoded(width: Int, height: Int, sha256: String)
    case failed(Status)

    init(_ bytes: [UInt8], limits: ImageLimits = .default) {
        do {
            let image = try ImageDecoder.decode(bytes, limits: limits)
            self = .decoded(width: image.width, height: image.height, sha256: SHA256.hex(image.pixels))
        } catch {
            self = .failed(error.status)
        }
    }

    var description: String {
        switch self {
        case let .decoded(w, h, sha): "decoded \(w)x\(h) sha256 \(sha.prefix(12))…"
        case let .failed(status): "failed with \(status)"
        }
    }
}
