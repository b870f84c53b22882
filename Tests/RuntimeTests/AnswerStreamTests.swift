import TestSupport
import Testing
@testable import LlavaUHD

/// `AnswerStream`: ids in, text out through the callback, stop strings held back, with the
/// real Mistral SentencePiece tokenizer of the tiny models.
@Suite(.enabled(if: fileExists(Fixtures.model("small-noslice") + "/tokenizer.model"), "needs the test assets"))
struct AnswerStreamTests {
    static let tokenizer: (any Tokenizer)? = try? Tokenizers.load(directory: Fixtures.model("small-noslice"))
    static let sentence = "Hello world, the end of it"

    /// Feeds the ids of `sentence` one by one; returns what the callback received, piece by
    /// piece (after each id, "" when nothing was released), and the stream.
    static func run(stopStrings: [String], callerStopsAfter limit: Int = .max)
        throws -> (pieces: [String], stream: AnswerStream, controls: [GenerationControl]) {
        let tokenizer = try #require(Self.tokenizer)
        let ids = try tokenizer.encode(sentence, addBOS: false, parseSpecial: false).map(Int.init)
        var stream = AnswerStream(tokenizer: tokenizer, stopStrings: stopStrings)
        var pieces: [String] = [], controls: [GenerationControl] = []
        var given = 0
        for id in ids {
            var released = ""
            let control = try stream.append(id) { text in
                released += text
                given += 1
                return given < limit
            }
            pieces.append(released)
            controls.append(control)
            if control == .stop { break }
        }
        var tail = ""
        stream.finish { tail += $0; return true }
        pieces.append(tail)
        return (pieces, stream, controls)
    }

    @Test func withoutStopStringsEverythingIsReleased() throws {
        let (pieces, stream, controls) = try Self.run(stopStrings: [])
        #expect(pieces.joined() == Self.sentence)
        #expect(stream.text == Self.sentence && !stream.hitStopString)
        #expect(!controls.contains(.stop))
    }

    /// Text that could be the start of a stop string is held back until it cannot be; the stop
    /// string and what follows it never reach the callback.
    @Test func stopStringIsHeldBackAndNotShown() throws {
        let (pieces, stream, controls) = try Self.run(stopStrings: [", the end"])
        #expect(stream.hitStopString && controls.last == .stop)
        #expect(stream.text == "Hello world")
        #expect(pieces.joined() == "Hello world")
        // Released text never ended with a proper prefix of the stop string: "," was held.
        var soFar = ""
        for piece in pieces {
            soFar += piece
            #expect(!soFar.hasSuffix(","), "a possible stop-string start was released: \(soFar)")
        }
    }

    /// A stop string that starts but never completes is released, in order, at the end.
    @Test func incompleteStopStringIsReleasedAtTheEnd() throws {
        let (pieces, stream, _) = try Self.run(stopStrings: ["of it!"])
        #expect(!stream.hitStopString)
        #expect(pieces.joined() == Self.sentence && stream.text == Self.sentence)
        #expect(try #require(pieces.last).hasSuffix("of it"), "the held-back tail comes with finish()")
    }

    /// The callback returning false stops the stream: nothing more is given, and the answer is
    /// exactly what the callback received.
    @Test func callerStopEndsTheAnswerAtWhatWasShown() throws {
        let (pieces, stream, controls) = try Self.run(stopStrings: [], callerStopsAfter: 2)
        #expect(controls.last == .stop && stream.stoppedByCaller)
        #expect(stream.text == pieces.joined() && Self.sentence.hasPrefix(stream.text))
        #expect(pieces.filter { !$0.isEmpty }.count == 2)
    }
}
