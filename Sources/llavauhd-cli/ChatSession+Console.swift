import LlavaUHD

extension ChatSession {
    /// One turn answered on the console (`run`, `chat`): the answer streams to standard output
    /// and ends with a line break (also when it stops early, if any text was written); the
    /// status line is cleared before the first piece; Ctrl-C stops the answer (`.cancelled`).
    func answerOnConsole(_ question: String, images: [RGBImage], parameters: ChatParameters,
                         status: StatusReporter) throws -> ChatReply {
        var started = false
        do {
            let reply = try InterruptHandler.shared.whileAnswering(cancellation) { () throws(LlavaError) in
                try chat(question, images: images, parameters: parameters) { piece in
                    if !started { status.clear() }
                    started = true
                    Console.out(piece)
                    return true
                }
            }
            Console.out("\n")
            return reply
        } catch {
            if started { Console.out("\n") }
            throw error
        }
    }
}
