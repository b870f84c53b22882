import ArgumentParser
import LlavaUHD

/// `llavauhd run`: one question, the answer streamed to standard output.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Answer one question about zero or more images; the answer streams to standard output.",
        discussion: """
            Each image goes before the question as upstream's eval scripts put it ('<image>\\n' + \
            question) unless the question holds one '<image>' placeholder per image. Progress and \
            timings go to standard error. Ctrl-C stops the answer (exit code 130).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("An image (JPEG or PNG); repeat for several.", valueName: "path"))
    var image: [String] = []

    @OptionGroup var answering: AnswerOptions

    @Argument(help: "The question.")
    var question: String

    func run() throws {
        let (status, parameters, checkedOptions) = try answering.start(defaultMaxNewTokens: 512)
        var options = checkedOptions
        // Images first: a bad path or file fails before the model is loaded.
        var images: [RGBImage] = []
        for path in image {
            let decoded = try ImageDecoder.decodeFile(path)
            let plan = try SlicePlan(inputSize: PixelSize(width: decoded.width, height: decoded.height),
                                     options: options.slicing)
            status.line("image \(images.count + 1): \(path), \(plan.oneLineSummary)")
            images.append(decoded)
        }
        let (model, loadSeconds) = try modelOptions.load(status)
        options.onStage = status.stageCallback
        let session = try ChatSession(model: model, options: options)
        do {
            let reply = try session.answerOnConsole(question, images: images, parameters: parameters, status: status)
            status.summary(reply, load: loadSeconds)
        } catch let error as LlavaError where error.status == .cancelled {
            throw LlavaError(.cancelled, "interrupted: the answer was stopped")
        }
    }
}

extension SlicePlan {
    /// Size, pre-resize, grid and views in one line, e.g.
    /// "600x400 -> 1024x682, grid 3x2 (6 slices 336x336 + overview 406x266)".
    var oneLineSummary: String {
        var text = "\(inputSize)"
        if resizedSize != inputSize { text += " -> \(resizedSize)" }
        if let grid, let sliceSize {
            text += ", grid \(grid.columns)x\(grid.rows) (\(grid.count) slices \(sliceSize) + overview \(overviewSize))"
        } else {
            text += ", not sliced (overview \(overviewSize))"
        }
        return text
    }
}
