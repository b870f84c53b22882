import ArgumentParser
import LlavaUHD

/// `llavauhd chat`: an interactive conversation on standard input.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat about images, one line per turn on standard input.",
        discussion: """
            Commands: '/image PATH' attaches an image to the next turn, '/reset' starts a new \
            conversation (encoded images stay cached), '/quit' (or end of input) leaves. \
            Ctrl-C during an answer stops it and keeps the conversation; Ctrl-C at the prompt \
            (or a second one) exits. With --save the conversation is written to a file after \
            every turn; --resume continues one saved with the same model (without recomputing it).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("An image for the first turn (repeatable).", valueName: "path"))
    var image: [String] = []

    @Option(name: .long, help: ArgumentHelp("Continue the conversation saved in this file (by --save, luhd_session_save).",
                                            valueName: "path"))
    var resume: String?

    @Option(name: .long, help: ArgumentHelp("Save the conversation to this file after every turn (replaced atomically).",
                                            valueName: "path"))
    var save: String?

    @OptionGroup var answering: AnswerOptions

    func run() throws {
        let (status, parameters, checkedOptions) = try answering.start(defaultMaxNewTokens: 512)
        var options = checkedOptions
        var pending: [RGBImage] = []
        for path in image { pending.append(try attach(path, slicing: options.slicing, status: status)) }
        let (model, _) = try modelOptions.load(status)
        options.onStage = status.stageCallback
        let session: ChatSession
        if let resume {
            session = try ChatSession.load(model: model, path: resume, options: options)
            status.line("resumed \(resume): \(session.history.count) message(s), \(session.position) positions")
        } else {
            session = try ChatSession(model: model, options: options)
        }
        if Console.stdinIsTerminal {
            Console.err("Type a question; /image PATH attaches an image, /reset, /quit. Ctrl-C stops an answer.\n")
        }

        while true {
            if Console.stdinIsTerminal { Console.out(pending.isEmpty ? "> " : "[\(pending.count) image(s)] > ") }
            guard let line = readLine(strippingNewline: true) else { break }
            let text = trimmed(line)
            if text.isEmpty { continue }
            if text == "/quit" || text == "/exit" { break }
            if text == "/reset" {
                session.reset()
                pending = []
                status.line("conversation reset")
                continue
            }
            if text == "/image" || text.hasPrefix("/image ") {
                let path = trimmed(String(text.dropFirst("/image".count)))
                do {
                    pending.append(try attach(path, slicing: options.slicing, status: status))
                } catch {
                    Console.err(error.commandLine)
                }
                continue
            }
            if text.hasPrefix("/") && !text.hasPrefix("//") {
                Console.err("unknown command \(text); commands: /image PATH, /reset, /quit (start a line with // to send a '/')\n")
                continue
            }
            let question = text.hasPrefix("//") ? String(text.dropFirst()) : text
            let turns = session.history.count
            do {
                let reply = try session.answerOnConsole(question, images: pending, parameters: parameters, status: status)
                pending = []
                status.line(StatusReporter.compactSummary(reply))
                if let save { try session.save(to: save) }
            } catch let error as LlavaError {
                // A turn stopped while answering stays in the conversation with its images;
                // one stopped before (image encoding, prefill) leaves the session as it was.
                let joined = session.history.count > turns
                if error.status == .cancelled {
                    if joined { pending = [] }
                    status.line(joined ? "[answer stopped]" : "[stopped before the answer; attached images kept]")
                } else {
                    status.clear()
                    Console.err(error.commandLine)
                    if !pending.isEmpty && !joined {
                        pending = []
                        status.line("[the attached images were dropped]")
                    }
                }
            }
        }
    }

    /// Decodes an image for the next turn and shows its plan.
    private func attach(_ path: String, slicing: SlicingOptions, status: StatusReporter) throws(LlavaError) -> RGBImage {
        guard !path.isEmpty else { throw LlavaError(.invalidArgument, "/image needs a path") }
        let decoded = try ImageDecoder.decodeFile(path)
        let plan = try SlicePlan(inputSize: PixelSize(width: decoded.width, height: decoded.height), options: slicing)
        status.line("image attached: \(path), \(plan.oneLineSummary)")
        return decoded
    }
}

/// `text` without leading and trailing whitespace.
func trimmed(_ text: String) -> String {
    var s = Substring(text)
    while let first = s.first, first.isWhitespace { s.removeFirst() }
    while let last = s.last, last.isWhitespace { s.removeLast() }
    return String(s)
}
