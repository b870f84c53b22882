import TestSupport
import Testing
@testable import LlavaUHD

/// What a session remembers after a cancelled answer: the partial answer shown to the caller
/// becomes the assistant's turn, the cache holds exactly its evaluated tokens, and the next turn
/// reuses all of it.
@Suite(.enabled(if: fileExists(Fixtures.model("small-noslice") + "/model.safetensors"), "needs the test assets"))
struct ChatSessionHistoryTests {
    @Test func historyAfterCancelIsWhatWasShown() throws {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        let session = try ChatSession(model: model)
        let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 16))
        var shown = ""
        var pieces = 0
        do {
            try session.chat("Hello", parameters: parameters) { text in
                shown += text
                pieces += 1
                if pieces == 3 { session.cancellation.cancel() }
                return true
            }
            Issue.record("generation should have been cancelled")
        } catch {
            #expect(error.status == .cancelled)
        }
        #expect(session.history == [.user("Hello"), .assistant(shown)])
        // Every cached position is accounted for: the prompt and the answer tokens evaluated.
        #expect(session.positions.count == session.position)
        #expect(session.tokenHistory.count == session.positions.count)

        // The next turn starts from those cached positions: it reuses their common prefix with
        // the new prompt (at least the whole first prompt's text) and evaluates only the rest.
        let before = session.positions
        let next = try session.chat("Again", parameters: parameters)
        let newPrompt = Array(session.positions.prefix(next.promptPositions))
        #expect(next.reusedPositions == PromptBuilder.reusablePrefix(cached: before, keys: newPrompt))
        #expect(next.reusedPositions > 0)
        #expect(session.history.count == 4)
    }
}
