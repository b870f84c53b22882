import LlavaUHD
import TestSupport
import Testing

/// Bad inputs end `llavauhd` with one line `llavauhd: <status name>: <message>` on standard
/// error and the exit code of the status's class (see `llavauhd --help`), never a crash.
@Suite struct CommandErrorTests {
    /// Exactly one line, with the status name and a message starting with `messagePrefix`.
    func expectOneLine(_ result: ProcessResult, exitCode: Int32, status: Status, messagePrefix: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.exitCode == exitCode, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("llavauhd: \(status.name): \(messagePrefix)"), "\(result.stderr)",
                sourceLocation: sourceLocation)
        #expect(lines(result.stderr).count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func missingModelDirectory() throws {
        let scratch = try TemporaryDirectory()
        let result = try CLI.run(["run", "--model", scratch.path + "/no-such-model", "--image", CLI.photo("coffee.png"),
                                  "--quiet", "What is this?"], scratch: scratch)
        expectOneLine(result, exitCode: 66, status: .io, messagePrefix: "'\(scratch.path)/no-such-model' is neither a model directory nor a GGUF file")
    }

    @Test func malformedModelConfig() throws {
        let scratch = try TemporaryDirectory()
        try writeText(scratch.path + "/config.json", "{\"model_type\": ")
        let result = try CLI.run(["run", "--model", scratch.path, "--quiet", "Hi"], scratch: scratch)
        expectOneLine(result, exitCode: 65, status: .badConfig, messagePrefix: "")
    }

    @Test func corruptImage() throws {
        let scratch = try TemporaryDirectory()
        let image = scratch.path + "/cut.png"
        let bytes = try readWholeFile(Fixtures.upstream("small-noslice") + "/input.png")
        try writeBytes(image, Array(bytes.prefix(bytes.count / 3)))
        let result = try CLI.run(["run", "--model", Fixtures.model("small-noslice"), "--image", image, "--quiet", "What?"],
                                 scratch: scratch)
        expectOneLine(result, exitCode: 67, status: .badImage, messagePrefix: "'\(image)': ")

        let plan = try CLI.run(["plan", image], scratch: scratch)
        expectOneLine(plan, exitCode: 67, status: .badImage, messagePrefix: "'\(image)': ")

        let text = scratch.path + "/notes.txt"
        try writeText(text, "not an image\n")
        let notImage = try CLI.run(["plan", text], scratch: scratch)
        expectOneLine(notImage, exitCode: 67, status: .badImage, messagePrefix: "'\(text)': unknown image format")
    }

    @Test func missingImageFile() throws {
        let scratch = try TemporaryDirectory()
        let result = try CLI.run(["plan", scratch.path + "/nothing.jpg"], scratch: scratch)
        expectOneLine(result, exitCode: 66, status: .io, messagePrefix: "cannot open '\(scratch.path)/nothing.jpg'")
    }

    @Test func badQuestionLines() throws {
        let scratch = try TemporaryDirectory()
        let questions = scratch.path + "/q.jsonl", answers = scratch.path + "/a.jsonl"
        let arguments = ["eval", "--model", Fixtures.model("small-noslice"), "--questions", questions, "--answers", answers]

        try writeText(questions, #"{"question_id": 1, "text": "fine"}"# + "\n" + #"{"question_id": 2, "text": "#)
        let broken = try CLI.run(arguments, scratch: scratch)
        expectOneLine(broken, exitCode: 64, status: .invalidArgument, messagePrefix: "'\(questions)' line 2: invalid JSON at byte ")

        try writeText(questions, #"{"question_id": 1, "image": "x.jpg"}"# + "\n")
        let noText = try CLI.run(arguments, scratch: scratch)
        expectOneLine(noText, exitCode: 64, status: .invalidArgument,
                      messagePrefix: "'\(questions)' line 1: no string \"text\" (the question)")
        // Nothing was answered, so no answers file was made.
        #expect(!fileExists(answers))

        try writeText(questions, #"{"question_id": 7, "image": "missing.jpg", "text": "?"}"# + "\n")
        let noImage = try CLI.run(arguments + ["--images", scratch.path, "--quiet"], scratch: scratch)
        expectOneLine(noImage, exitCode: 66, status: .io,
                      messagePrefix: "question_id 7 ('\(questions)' line 1): no image file '\(scratch.path)/missing.jpg'")
    }

    @Test func badOptionValues() throws {
        let scratch = try TemporaryDirectory()
        let model = Fixtures.model("small-noslice")
        let topP = try CLI.run(["run", "--model", model, "--top-p", "0", "--quiet", "Hi"], scratch: scratch)
        expectOneLine(topP, exitCode: 64, status: .invalidArgument, messagePrefix: "sampling: top_p")

        let precision = try CLI.run(["run", "--model", model, "--precision", "bf16", "--quiet", "Hi"], scratch: scratch)
        expectOneLine(precision, exitCode: 64, status: .invalidArgument,
                      messagePrefix: "--precision bf16 is not one of exact, fast")

        let slices = try CLI.run(["plan", CLI.photo("coffee.png"), "--max-slices", "65"], scratch: scratch)
        expectOneLine(slices, exitCode: 64, status: .invalidArgument, messagePrefix: "max slices 65 must be in 0...64")

        // The argument parser's own errors: its message and usage, exit code 64.
        let unknown = try CLI.run(["run", "--model", model, "--no-such-option", "Hi"], scratch: scratch)
        #expect(unknown.exitCode == 64)
        #expect(unknown.stderr.contains("Unknown option '--no-such-option'"))
    }

    @Test func contextTooSmall() throws {
        let scratch = try TemporaryDirectory()
        let result = try CLI.run(["run", "--model", Fixtures.model("small-noslice"), "--ctx", "32", "--quiet",
                                  "A question that does not fit in thirty-two positions together with the system prompt."],
                                 scratch: scratch)
        expectOneLine(result, exitCode: 68, status: .contextFull, messagePrefix: "the conversation needs ")
    }
}
