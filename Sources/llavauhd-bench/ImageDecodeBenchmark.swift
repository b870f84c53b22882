#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// Decoding the real test images (JPEG via libjpeg-turbo, PNG via libpng) into RGB8, best of N,
/// next to Pillow's `Image.open(path).convert('RGB')` when a Python with Pillow is available
/// (env LLAVAUHD_BENCH_PYTHON, default python3; script scripts/bench/bench_image_decode.py).
/// The images come from the test-assets folder (env LLAVAUHD_TEST_ASSETS, default .build-assets).
extension Benchmark {
static var imageDecode: Benchmark { Benchmark(
    name: "image-decode",
    summary: "JPEG/PNG file → RGB8, against Pillow's open().convert('RGB')"
) { options in
    let assets = getenv("LLAVAUHD_TEST_ASSETS").map { String(cString: $0) } ?? ".build-assets"
    let names = ["rocket.jpg", "retina.jpg", "hubble_deep_field.jpg", "examples.jpg", "wizard.jpg",
                 "astronaut.png", "camera.png", "horse.png", "ImageMagick.png", "cylinder_shaded.png"]
    let paths = names.map { assets + "/images/" + $0 }.filter(fileExists)
    guard !paths.isEmpty else { return "No images found in \(assets)/images (run scripts/setup-test-assets.sh)." }
    let repetitions = options.repetitions(15)
    let pillow = pillowDecodeTimes(paths, repetitions: repetitions)

    var rows = ["| image | size | this library | Pillow | ratio |", "|---|---|---:|---:|---:|"]
    for path in paths {
        let image = try ImageDecoder.decodeFile(path)
        let seconds = try bestOf(repetitions) { _ = try ImageDecoder.decodeFile(path) }
        let name = String(path.split(separator: "/").last ?? "")
        let theirs = pillow.times[path].map { fmt($0 * 1000, 2) + " ms" } ?? "–"
        let ratio = pillow.times[path].map { fmt($0 / seconds, 2) + "×" } ?? "–"
        rows.append("| \(name) | \(image.width)×\(image.height) | \(fmt(seconds * 1000, 2)) ms | \(theirs) | \(ratio) |")
    }
    return """
    \(machineLine()); best of \(repetitions), one thread, file read included. \
    Pillow: \(pillow.version ?? "not available"). Ratio > 1: this library is faster.

    \(rows.joined(separator: "\n"))
    """
} }
}

/// Pillow's best-of-N decode time per path, from scripts/bench/bench_image_decode.py.
private func pillowDecodeTimes(_ paths: [String], repetitions: Int) -> (version: String?, times: [String: Double]) {
    let command = ([PythonRunner.python, "scripts/bench/bench_image_decode.py", String(repetitions)] + paths)
        .map(shellQuoted).joined(separator: " ") + " 2>/dev/null"
    var version: String?
    var times: [String: Double] = [:]
    for line in (runCommand(command) ?? "").split(separator: "\n") {
        let text = String(line).trimmingCharacters()
        if text.hasPrefix("pillow ") { version = "Pillow " + text.dropFirst(7); continue }
        let fields = text.split(separator: "\t")
        if fields.count == 2, let seconds = Double(fields[1]) { times[String(fields[0])] = seconds }
    }
    return (version, times)
}
