import LlavaUHD
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `llavauhd eval`: the answers file upstream's scoring scripts read
/// (`llava/eval/model_vqa_loader.py`: question_id, prompt, text, answer_id, model_id, metadata),
/// answers equal to the library's, resuming, interruption and shards.
@Suite(.serialized) struct EvalCommandTests {
    /// Questions as upstream's files have them: numeric and string ids, extra keys, a blank line,
    /// an image used twice (the second time from the image cache), one question without image.
    static let questionLines = [
        #"{"question_id": 1, "image": "chessboard_RGB.png", "text": "What is in the picture?", "category": "detail"}"#,
        #"{"question_id": "b-2", "image": "cylinder_shaded.png", "text": "Describe the shading.\nAnswer briefly."}"#,
        "",
        #"{"question_id": 3, "image": "chessboard_RGB.png", "text": "How many squares are there? \u00e9"}"#,
        #"{"question_id": 4, "text": "A question without an image."}"#,
    ]
    static let questions: [(id: JSONValue, image: String?, text: String)] = [
        (.int(1), "chessboard_RGB.png", "What is in the picture?"),
        (.string("b-2"), "cylinder_shaded.png", "Describe the shading.\nAnswer briefly."),
        (.int(3), "chessboard_RGB.png", "How many squares are there? \u{e9}"),
        (.int(4), nil, "A question without an image."),
    ]
    static let options = ["--preresize", "0", "--max-new-tokens", "6"]

    /// The in-process answers: one session, reset before each question, the CLI's settings.
    static let expectedAnswers = Result { () throws(LlavaError) -> [String] in
        let model = try CLI.smallModel.get()
        var options = ChatSession.Options()
        options.slicing = SlicingOptions(preresizeLongSide: 0)
        let session = try ChatSession(model: model, options: options)
        var answers: [String] = []
        for q in questions {
            session.reset()
            let images = try q.image.map { name throws(LlavaError) in [try ImageDecoder.decodeFile(CLI.photo(name))] } ?? []
            answers.append(try session.chat(q.text, images: images,
                                            parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 6))).text)
        }
        return answers
    }

    func eval(_ scratch: TemporaryDirectory, answers: String, questionFile: String? = nil,
              extra: [String] = []) throws -> ProcessResult {
        let file = questionFile ?? scratch.path + "/questions.jsonl"
        if questionFile == nil { try writeText(file, Self.questionLines.joined(separator: "\n") + "\n") }
        return try CLI.run(["eval", "--model", Fixtures.model("small-noslice"), "--questions", file,
                            "--images", Fixtures.assets + "/images", "--answers", answers] + Self.options + extra, scratch: scratch)
    }

    /// Checks one answer line against question `index`.
    func check(_ line: String, question index: Int) throws {
        let value = try JSONValue.parse(line)
        let members = try #require(value.objectValue)
        #expect(members.map(\.0) == ["question_id", "prompt", "text", "answer_id", "model_id", "metadata"])
        #expect(value["question_id"] == Self.questions[index].id)
        #expect(value["prompt"]?.stringValue == Self.questions[index].text)
        #expect(value["text"]?.stringValue == strippedASCII(try Self.expectedAnswers.get()[index]))
        let answerID = try #require(value["answer_id"]?.stringValue)
        #expect(answerID.count == 22 && answerID.allSatisfy { "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".contains($0) })
        #expect(value["model_id"]?.stringValue == "small-noslice")
        #expect(value["metadata"] == .object([]))
    }

    @Test func writesUpstreamAnswerLinesEqualToTheLibrary() throws {
        let scratch = try TemporaryDirectory()
        let answers = scratch.path + "/out/answers.jsonl"   // the folder is created, as upstream does
        let result = try eval(scratch, answers: answers)
        try #require(result.exitCode == 0, "\(result)")
        let written = lines(try readText(answers))
        try #require(written.count == Self.questions.count, "\(written)")
        for (i, line) in written.enumerated() { try check(line, question: i) }
        #expect(Set(written.map { try? JSONValue.parse($0)["answer_id"]?.stringValue }).count == written.count)
        // Questions 1 and 3 share an image: encoded once, then taken from the cache.
        #expect(result.stderr.contains("(2 encoded, 1 from cache)"), "\(result.stderr)")
        // Python-style escaping: the é of question 3 is written as \u00e9.
        #expect(written[2].contains(#""prompt": "How many squares are there? \u00e9""#))
    }

    @Test func resumeSkipsAnsweredQuestionsAndDropsACutLine() throws {
        let scratch = try TemporaryDirectory()
        let answers = scratch.path + "/answers.jsonl"
        // Questions 1 and 3 are done (with texts the model would not give, to see they are kept),
        // and the answer to question 4 was cut off in the middle of its line.
        let done = [
            #"{"question_id": 1, "prompt": "What is in the picture?", "text": "kept 1", "answer_id": "a1", "model_id": "m", "metadata": {}}"#,
            #"{"question_id": 3, "prompt": "How many squares are there? \u00e9", "text": "kept 3", "answer_id": "a3", "model_id": "m", "metadata": {}}"#,
        ]
        try writeText(answers, done.joined(separator: "\n") + "\n" + #"{"question_id": 4, "prompt": "A quest"#)
        let result = try eval(scratch, answers: answers)
        try #require(result.exitCode == 0, "\(result)")
        #expect(result.stderr.contains("removed an incomplete last line"))
        #expect(result.stderr.contains("4 questions, 2 already answered"))
        let written = lines(try readText(answers))
        try #require(written.count == 4, "\(written)")
        #expect(Array(written[0..<2]) == done)
        try check(written[2], question: 1)
        try check(written[3], question: 3)

        // Everything answered: nothing to do, the model is not even loaded.
        let again = try eval(scratch, answers: answers)
        #expect(again.exitCode == 0)
        #expect(again.stderr.contains("4 already answered in \(answers), 0 to do"))
        #expect(!again.stderr.contains("model loaded"))
        #expect(lines(try readText(answers)) == written)
    }

    @Test func interruptedRunKeepsWholeLinesAndResumes() throws {
        let scratch = try TemporaryDirectory()
        let questions = scratch.path + "/many.jsonl", answers = scratch.path + "/answers.jsonl"
        let count = 24
        try writeText(questions, (1...count).map { #"{"question_id": \#($0), "text": "Question number \#($0)?"}"# }
            .joined(separator: "\n") + "\n")
        let arguments = ["eval", "--model", Fixtures.model("small-noslice"), "--questions", questions, "--answers", answers,
                         "--max-new-tokens", "32", "--stop", "never appears"]
        let child = try CLI.start(arguments, scratch: scratch)
        // Ctrl-C once the first answer is in the file.
        let deadline = monotonicSeconds() + 300
        while try !child.hasExited(), !(try readText(answers)).contains("\n"), monotonicSeconds() < deadline { usleep(2_000) }
        child.send(SIGINT)
        let stopped = try child.wait()
        let partial = try readText(answers)
        let kept = lines(partial)
        guard stopped.exitCode == 130 else {
            Issue.record("expected an interrupted run (exit 130): \(stopped)")
            return
        }
        #expect(lines(stopped.stderr).last?.hasPrefix("llavauhd: cancelled: interrupted: \(kept.count) new answers were written") == true,
                "\(stopped.stderr)")
        #expect(partial.hasSuffix("\n"))
        #expect(kept.count >= 1 && kept.count < count)
        for line in kept { #expect((try? JSONValue.parse(line)) != nil, "not a whole answer line: \(line)") }

        let resumed = try CLI.run(arguments + ["--quiet"], scratch: scratch)
        try #require(resumed.exitCode == 0, "\(resumed)")
        let all = lines(try readText(answers))
        #expect(Array(all.prefix(kept.count)) == kept)
        let ids = all.compactMap { try? JSONValue.parse($0)["question_id"]?.intValue }
        #expect(ids == Array(1...count))
    }

    @Test func shardsSplitTheQuestionsLikeUpstreamChunks() throws {
        let scratch = try TemporaryDirectory()
        let questions = scratch.path + "/seven.jsonl"
        try writeText(questions, (1...7).map { #"{"question_id": \#($0), "text": "Q\#($0)"}"# }.joined(separator: "\n") + "\n")
        var shards: [[Int]] = []
        for i in 0..<3 {
            let answers = scratch.path + "/answers-\(i).jsonl"
            let result = try eval(scratch, answers: answers, questionFile: questions,
                                  extra: ["--shard", "\(i)/3", "--max-new-tokens", "2", "--quiet"])
            try #require(result.exitCode == 0, "\(result)")
            shards.append(lines(try readText(answers)).compactMap { try? JSONValue.parse($0)["question_id"]?.intValue })
        }
        // upstream's get_chunk: chunks of ceil(7/3) = 3, in order; disjoint and covering all.
        #expect(shards == [[1, 2, 3], [4, 5, 6], [7]])
        #expect(shards.flatMap { $0 }.sorted() == Array(1...7))
        #expect(Set(shards.flatMap { $0 }).count == 7)

        let bad = try eval(scratch, answers: scratch.path + "/x.jsonl", questionFile: questions, extra: ["--shard", "3/3"])
        #expect(bad.exitCode == 64)
        #expect(bad.stderr == "llavauhd: invalid argument: --shard '3/3' must be i/n with 0 <= i < n, e.g. 0/4\n")
    }
}
