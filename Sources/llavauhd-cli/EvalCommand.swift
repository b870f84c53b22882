import ArgumentParser
import LlavaUHD

/// `llavauhd eval`: answers an upstream-style question file, writing the answers file that
/// upstream's scoring scripts read.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Answer a benchmark's question file (JSON lines), as upstream's model_vqa_loader.py does.",
        discussion: """
            Each question line needs "question_id" and "text", and names its image ("image") \
            relative to --images; other keys are ignored. Each answer line is \
            {"question_id", "prompt" (the question text), "text" (the answer, stripped), \
            "answer_id", "model_id", "metadata": {}}, as upstream writes it.

            Defaults are upstream's eval settings: greedy, 128 new tokens, pre-resize 1024, at \
            most 9 slices; give --preresize as upstream picks it from the image folder (1536 \
            for 'textvqa', 0 for 'mme' or 'ai2d'). Every question starts a fresh conversation; \
            encoded images stay cached.

            Resumable: questions whose id is already in the answers file are skipped, so after an \
            interruption the same command continues. --shard i/n takes the same contiguous part \
            of the questions as upstream's --chunk-idx i --num-chunks n.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: ArgumentHelp("The question file (JSON lines).", valueName: "file"))
    var questions: String

    @Option(name: .long, help: ArgumentHelp("The folder the questions' image names are relative to.", valueName: "dir"))
    var images: String = ""

    @Option(name: .long, help: ArgumentHelp("The answers file (JSON lines; appended to when it exists).", valueName: "file"))
    var answers: String

    @Option(name: .long, help: ArgumentHelp("Answer only part i of n (0 <= i < n) of the questions.", valueName: "i/n"))
    var shard: String?

    @Option(name: .customLong("model-id"), help: ArgumentHelp(
        "The \"model_id\" of the answers (default: the model folder's name, as upstream).", valueName: "name"))
    var modelID: String?

    @Option(name: .customLong("image-cache"), help: "Encoded images kept for reuse between questions.")
    var imageCache: Int = 8

    @OptionGroup var answering: AnswerOptions

    func run() throws {
        let (status, parameters, checkedOptions) = try answering.start(defaultMaxNewTokens: 128)
        var options = checkedOptions
        options.imageCacheCapacity = imageCache
        let (shardIndex, shardCount) = try Self.parseShard(shard)

        // Everything that can be checked without the model, first.
        let all = try EvalQuestion.load(path: questions)
        let mine = EvalQuestion.shard(all, index: shardIndex, count: shardCount)
        let file = try AnswerFile(path: answers)
        if file.droppedPartialLine { status.line("removed an incomplete last line from \(answers)") }
        var seen = Set<String>()
        var todo: [EvalQuestion] = []
        var duplicates = 0
        for question in mine where !file.answered.contains(question.key) {
            if seen.insert(question.key).inserted { todo.append(question) } else { duplicates += 1 }
        }
        if duplicates > 0 { status.line("note: \(duplicates) repeated question_id(s) in \(questions); each id is answered once") }
        for question in todo {
            if let path = question.imagePath(folder: images), !fileExists(path) {
                throw LlavaError(.io, "question_id \(question.key) ('\(questions)' line \(question.line)): no image file '\(path)'")
            }
        }
        let shardText = shard.map { " (shard \($0): \(mine.count) of \(all.count))" } ?? ""
        status.line("\(mine.count) questions\(shardText), \(mine.count - todo.count) already answered in \(answers), \(todo.count) to do")
        guard !todo.isEmpty else { return }

        let (model, _) = try modelOptions.load(status)
        let session = try ChatSession(model: model, options: options)
        let modelName = modelID ?? Self.upstreamModelName(modelOptions.model)
        var totals = EvalTotals()
        let start = monotonicSeconds()
        // Ctrl-C stops the answer in progress, or the loop between two answers; the file then
        // holds whole lines only, and the same command resumes.
        try InterruptHandler.shared.whileAnswering(session.cancellation) {
            for (n, question) in todo.enumerated() {
                if InterruptHandler.shared.interrupted { throw Self.interrupted(written: n, answers: answers) }
                let begin = monotonicSeconds()
                let reply = try answer(question, written: n, session: session, parameters: parameters)
                try file.append(JSONWriter.object([
                    ("question_id", question.id),
                    ("prompt", .string(question.text)),
                    ("text", .string(pythonStripped(reply.text))),
                    ("answer_id", .string(ShortUUID.random())),
                    ("model_id", .string(modelName)),
                    ("metadata", .object([])),
                ]), key: question.key)
                totals.add(reply)
                status.status("[\(n + 1)/\(todo.count)] question_id \(question.key): "
                              + "\(reply.tokens.count) tokens in \(fixed(monotonicSeconds() - begin)) s")
            }
        }
        let elapsed = monotonicSeconds() - start
        status.line("eval: \(todo.count) answers in \(fixed(elapsed)) s (\(fixed(elapsed / Double(todo.count))) s per question), "
                    + "written to \(answers)")
        for line in totals.lines { status.line(line) }
    }

    /// One question in a fresh conversation (the image cache is kept). Errors name the question.
    private func answer(_ question: EvalQuestion, written: Int, session: ChatSession,
                        parameters: ChatParameters) throws(LlavaError) -> ChatReply {
        var pictures: [RGBImage] = []
        do {
            if let path = question.imagePath(folder: images) { pictures.append(try ImageDecoder.decodeFile(path)) }
            session.reset()
            return try session.chat(question.text, images: pictures, parameters: parameters)
        } catch {
            if error.status == .cancelled { throw Self.interrupted(written: written, answers: answers) }
            throw LlavaError(error.status, "question_id \(question.key): \(error.message)")
        }
    }

    static func interrupted(written: Int, answers: String) -> LlavaError {
        LlavaError(.cancelled, "interrupted: \(written) new answers were written to \(answers); run the same command again to resume")
    }

    /// `i/n` with 0 <= i < n.
    static func parseShard(_ text: String?) throws(LlavaError) -> (index: Int, count: Int) {
        guard let text else { return (0, 1) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else {
            throw LlavaError(.invalidArgument, "--shard '\(text)' must be i/n with 0 <= i < n, e.g. 0/4")
        }
        return (i, n)
    }

    /// Upstream's `get_model_name_from_path`: the folder's name, or `parent_checkpoint-N` for a
    /// `checkpoint-N` folder.
    static func upstreamModelName(_ path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        guard let last = parts.last else { return path }
        if last.hasPrefix("checkpoint-"), parts.count >= 2 { return parts[parts.count - 2] + "_" + last }
        return last
    }
}

/// What the answers of an eval run cost, summed.
struct EvalTotals {
    var imageSeconds = 0.0, prefillSeconds = 0.0, decodeSeconds = 0.0
    var encoded = 0, cached = 0, prefilled = 0, decoded = 0

    mutating func add(_ reply: ChatReply) {
        let t = reply.timings
        imageSeconds += t.imageEncoding
        encoded += t.encodedImages
        cached += t.cachedImages
        prefillSeconds += t.prefill
        decodeSeconds += t.decode
        prefilled += reply.promptPositions - reply.reusedPositions
        decoded += reply.tokens.count
    }

    var lines: [String] {
        ["images:  \(fixed(imageSeconds)) s (\(encoded) encoded, \(cached) from cache)",
         "prefill: \(prefilled) positions in \(fixed(prefillSeconds)) s (\(StatusReporter.rate(prefilled, prefillSeconds)) tok/s)",
         "decode:  \(decoded) tokens in \(fixed(decodeSeconds)) s (\(StatusReporter.rate(decoded, decodeSeconds)) tok/s)"]
    }
}
