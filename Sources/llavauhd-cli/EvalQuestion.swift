import LlavaUHD

/// One line of an upstream-style question file (`llava/eval/model_vqa_loader.py`):
/// `{"question_id": ..., "image": "file.jpg", "text": "question", ...}`. Other keys (category,
/// answer, ...) are allowed and ignored; `image` may be missing or null for a text-only question.
struct EvalQuestion: Sendable {
    /// The id as written (a number or a string), copied into the answer.
    let id: JSONValue
    /// `id` as JSON text: the identity used to skip finished questions.
    let key: String
    /// The image path relative to the image folder (or absolute), if any.
    let image: String?
    let text: String
    /// 1-based line number in the question file.
    let line: Int

    /// Parses a question file. Blank lines are skipped; any other line that is not a JSON object
    /// with a `question_id` and a string `text` throws `.invalidArgument` naming the line.
    static func load(path: String) throws(LlavaError) -> [EvalQuestion] {
        let bytes = try readWholeFile(path)
        var questions: [EvalQuestion] = []
        for (number, line) in jsonLines(bytes) {
            func bad(_ why: String) -> LlavaError { LlavaError(.invalidArgument, "'\(path)' line \(number): \(why)") }
            let value: JSONValue
            do {
                value = try JSONValue.parse(line)
            } catch {
                throw bad(error.description)
            }
            guard value.objectValue != nil else { throw bad("not a JSON object") }
            guard let id = value["question_id"], !id.isNull else { throw bad("no \"question_id\"") }
            guard id.arrayValue == nil, id.objectValue == nil else { throw bad("\"question_id\" must be a number or a string") }
            guard let text = value["text"]?.stringValue else { throw bad("no string \"text\" (the question)") }
            var image: String? = nil
            if let field = value["image"], !field.isNull {
                guard let name = field.stringValue else { throw bad("\"image\" must be a string (a file name)") }
                image = name
            }
            questions.append(EvalQuestion(id: id, key: JSONWriter.value(id), image: image, text: text, line: number))
        }
        return questions
    }

    /// Shard `index` of `count` (0-based): the same contiguous chunks as upstream's
    /// `get_chunk(questions, num_chunks, chunk_idx)` (chunk size ceil(n / count)), so the shards'
    /// answer files concatenated in index order follow the question file's order.
    static func shard(_ questions: [EvalQuestion], index: Int, count: Int) -> ArraySlice<EvalQuestion> {
        let size = (questions.count + count - 1) / count
        let start = min(questions.count, index * size)
        return questions[start..<min(questions.count, start + size)]
    }

    /// The image's path: `folder/image` like Python's `os.path.join` (an absolute `image` is
    /// used as is).
    func imagePath(folder: String) -> String? {
        guard let image else { return nil }
        if image.hasPrefix("/") || folder.isEmpty { return image }
        return folder.hasSuffix("/") ? folder + image : folder + "/" + image
    }
}

/// The non-blank lines of a JSON-lines text with their 1-based line numbers (a trailing `\r` is
/// dropped, so CRLF files work).
func jsonLines(_ bytes: [UInt8]) -> [(Int, [UInt8])] {
    var out: [(Int, [UInt8])] = []
    var number = 0
    for var line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        number += 1
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
        out.append((number, Array(line)))
    }
    return out
}

/// `text` stripped as Python's `str.strip()` strips: every character `str.isspace()` accepts
/// (Unicode White_Space and U+001C...U+001F).
func pythonStripped(_ text: String) -> String {
    func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
    let scalars = Array(text.unicodeScalars)
    guard let first = scalars.firstIndex(where: { !isSpace($0) }),
          let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
    var out = String.UnicodeScalarView()
    out.append(contentsOf: scalars[first...last])
    return String(out)
}
