#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// Decoding the real test images (JPEG via libjpeg-turbo, PNG via libpng) into RGB8, best of N,
/// next to Pillow's `Image.open(path).convert('RGB')` when a Python with Pillow is available
/// (env LLAVAUHD_BENCH_PYTHON, default python3; script scripts/bench_image_decode.py).
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
        let theirs = pillow.times[path].map { fixed2($0 * 1000) + " ms" } ?? "–"
        let ratio = pillow.times[path].map { fixed2($0 / seconds) + "×" } ?? "–"
        rows.append("| \(name) | \(image.width)×\(image.height) | \(fixed2(seconds * 1000)) ms | \(theirs) | \(ratio) |")
    }
    return """
    \(machineLine()); best of \(repetitions), one thread, file read included. \
    Pillow: \(pillow.version ?? "not available"). Ratio > 1: this library is faster.

    \(rows.joined(separator: "\n"))
    """
} }
}

/// Pillow's best-of-N decode time per path, from scripts/bench_image_decode.py.
private func pillowDecodeTimes(_ paths: [String], repetitions: Int) -> (version: String?, times: [String: Double]) {
    let python = getenv("LLAVAUHD_BENCH_PYTHON").map { String(cString: $0) } ?? "python3"
    let command = ([python, "scripts/bench_image_decode.py", String(repetitions)] + paths)
        .map { "'" + $0 + "'" }.joined(separator: " ") + " 2>/dev/null"
    guard let pipe = popen(command, "r") else { return (nil, [:]) }
    var version: String?
    var times: [String: Double] = [:]
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), pipe) != nil {
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.trimmingCharacters()
        if text.hasPrefix("pillow ") { version = "Pillow " + text.dropFirst(7); continue }
        let fields = text.split(separator: "\t")
        if fields.count == 2, let seconds = Double(fields[1]) { times[String(fields[0])] = seconds }
    }
    pclose(pipe)
    return (version, times)
}

/// `value` with two decimals.
private func fixed2(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
}
