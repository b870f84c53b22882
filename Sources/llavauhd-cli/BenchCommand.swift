import ArgumentParser
import LlavaUHD

/// `llavauhd bench`: a short end-to-end benchmark of one model directory. The detailed,
/// PyTorch-compared benchmarks are `llavauhd-bench` (BENCHMARKS.md).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time loading, each image stage, prefill and decode on a model directory.",
        discussion: """
            Without --image a synthetic 1024x768 picture is used (sliced into a 3x2 grid plus \
            the overview at the default settings). Decoding ignores the end-of-sequence token, \
            so exactly --new-tokens tokens are timed. Times are the best of --runs.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("The image to encode (default: a synthetic 1024x768 one).", valueName: "path"))
    var image: String?

    @Option(name: .customLong("new-tokens"), help: "Tokens to decode.")
    var newTokens: Int = 32

    @Option(name: .long, help: "Repetitions of each measurement (the best is shown).")
    var runs: Int = 1

    @OptionGroup var slicing: SlicingFlags
    @OptionGroup var output: OutputFlags

    func run() throws {
        InterruptHandler.shared.install()
        guard runs >= 1 else { throw LlavaError(.invalidArgument, "--runs \(runs) must be at least 1") }
        guard newTokens >= 1 else { throw LlavaError(.invalidArgument, "--new-tokens \(newTokens) must be at least 1") }
        let options = slicing.options
        try options.validate()
        let status = StatusReporter(quiet: output.quiet)
        var rows: [(String, String, String)] = []

        let picture: RGBImage
        let imageName: String
        if let image {
            var decoded: RGBImage? = nil
            let seconds = try best { () throws(LlavaError) in decoded = try ImageDecoder.decodeFile(image) }
            guard let decoded else { throw LlavaError(.internal, "image not decoded") }
            picture = decoded
            imageName = image
            rows.append(("decode image file", "\(fixed(seconds * 1000, 1)) ms", "\(picture.width)x\(picture.height)"))
        } else {
            picture = Self.syntheticImage(width: 1024, height: 768)
            imageName = "synthetic"
        }

        let (model, loadSeconds) = try modelOptions.load(status)
        rows.insert(("load model", "\(fixed(loadSeconds)) s", "\(model.threads) threads"), at: 0)
        let context = model.computeContext()
        let stack = try model.requireVision(for: "the bench command (it times the image stages)")
        let plan = try model.plan(for: picture, options: options)

        // The image stages one by one.
        status.status("timing the image stages")
        let preprocessor = ViewPreprocessor(options: options)
        var pixels: [PixelTensor] = []
        let tPre = try best { () throws(LlavaError) in pixels = try preprocessor.pixels(of: picture, threads: model.threads).views }
        let views = pixels.count
        rows.append(("slicing, resize, normalisation", "\(fixed(tPre * 1000, 1)) ms", "\(views) views"))
        var features: [PatchFeatures] = []
        let tVision = try best { () throws(LlavaError) in features = try stack.encoder.encode(pixels, context: context) }
        rows.append(("vision tower", "\(fixed(tVision)) s", "\(fixed(tVision / Double(views), 3)) s/view"))
        var inputs: [ProjectorInput] = []
        for (p, f) in zip(pixels, features) {
            inputs.append(try ProjectorInput(rows: f.rows, columns: f.columns, channels: f.channels, features: f.values,
                                             pixelHeight: p.height, pixelWidth: p.width, pixels: p.values))
        }
        let tProject = try best { () throws(LlavaError) in _ = try stack.projector.project(inputs, context: context) }
        rows.append((stack.config.projector.kind == .hiwin ? "projector (VDIM + Hiwin)" : "projector (v1 resampler)", "\(fixed(tProject)) s", "\(fixed(tProject / Double(views), 3)) s/view"))

        // One chat turn: encoding, prefill, decode.
        var sessionOptions = ChatSession.Options()
        sessionOptions.slicing = options
        sessionOptions.imageCacheCapacity = 0
        let session = try ChatSession(model: model, options: sessionOptions)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: newTokens, stopTokenIds: []))
        var bestReply: ChatReply? = nil
        for _ in 0..<runs {
            session.reset()
            status.status("timing a chat turn")
            let reply = try InterruptHandler.shared.whileAnswering(session.cancellation) { () throws(LlavaError) in
                try session.chat("Describe the image in detail.", images: [picture], parameters: parameters)
            }
            if let b = bestReply {
                var merged = b
                merged.timings.imageEncoding = min(b.timings.imageEncoding, reply.timings.imageEncoding)
                merged.timings.prefill = min(b.timings.prefill, reply.timings.prefill)
                merged.timings.decode = min(b.timings.decode, reply.timings.decode)
                bestReply = merged
            } else {
                bestReply = reply
            }
        }
        status.clear()
        guard let reply = bestReply else { throw LlavaError(.internal, "no chat turn ran") }
        let t = reply.timings
        rows.append(("chat: image encoding", "\(fixed(t.imageEncoding)) s", "\(views) views"))
        rows.append(("chat: prefill", "\(fixed(t.prefill)) s",
                     "\(reply.promptPositions) positions, \(StatusReporter.rate(reply.promptPositions, t.prefill)) tok/s"))
        rows.append(("chat: decode", "\(fixed(t.decode)) s",
                     "\(reply.tokens.count) tokens, \(StatusReporter.rate(reply.tokens.count, t.decode)) tok/s"))

        var text = "llavauhd bench: \(modelOptions.model), \(model.threads) threads, best of \(runs)\n"
        text += "image: \(imageName), \(plan.oneLineSummary), \(plan.imagePositions(layout: stack.config.imageTokenLayout)) image positions\n\n"
        text += "| step | time | |\n|---|---:|---|\n"
        for (name, time, note) in rows { text += "| \(name) | \(time) | \(note) |\n" }
        Console.out(text)
    }

    /// The shortest of `runs` timings of `body`, in seconds.
    private func best(_ body: () throws(LlavaError) -> Void) throws(LlavaError) -> Double {
        var shortest = Double.infinity
        for _ in 0..<runs {
            let start = monotonicSeconds()
            try body()
            shortest = min(shortest, monotonicSeconds() - start)
        }
        return shortest
    }

    /// A smooth colour gradient with some texture, so every stage sees ordinary pixel values.
    static func syntheticImage(width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8(truncatingIfNeeded: x * 255 / max(1, width - 1))
                pixels[i + 1] = UInt8(truncatingIfNeeded: y * 255 / max(1, height - 1))
                pixels[i + 2] = UInt8(truncatingIfNeeded: ((x / 32 + y / 32) % 2) * 128 + (x ^ y) % 64)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
