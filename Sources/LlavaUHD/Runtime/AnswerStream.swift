/// The text side of generating an answer: token ids in, whole characters out to the caller's
/// `onText` callback, with stop strings held back until they can be ruled out (a stop string
/// ends the answer and is not part of it). `onText` returning false stops the stream; from
/// then on the caller is given nothing more, and the answer is exactly what it was given.
struct AnswerStream {
    private var detokenizer: StreamingDetokenizer
    private var matcher: StopStringMatcher
    /// The text released so far (what the callback was given).
    private(set) var text = ""
    /// True once the callback returned false.
    private(set) var stoppedByCaller = false

    init(tokenizer: any Tokenizer, stopStrings: [String]) {
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        matcher = StopStringMatcher(stopStrings)
    }

    /// True when a stop string appeared.
    var hitStopString: Bool { matcher.stopped }

    /// Adds one generated id; `.stop` once a stop string appeared or the caller stopped.
    /// Throws `.invalidArgument` for an id the tokenizer does not know.
    mutating func append(_ token: Int, onText: (String) -> Bool) throws(LlavaError) -> GenerationControl {
        emit(try detokenizer.append(Int32(token)), onText: onText)
        return matcher.stopped || stoppedByCaller ? .stop : .continue
    }

    /// Ends the answer: flushes the detokenizer (unless the answer was stopped) and releases
    /// text held back for a stop string that never completed.
    mutating func finish(onText: (String) -> Bool) {
        if !matcher.stopped && !stoppedByCaller { emit(detokenizer.finish(), onText: onText) }
        let tail = matcher.finish()
        if !tail.isEmpty && !stoppedByCaller {
            text += tail
            _ = onText(tail)
        }
    }

    private mutating func emit(_ piece: String, onText: (String) -> Bool) {
        guard !stoppedByCaller else { return }
        let released = matcher.feed(piece)
        guard !released.isEmpty else { return }
        text += released
        if !onText(released) { stoppedByCaller = true }
    }
}
