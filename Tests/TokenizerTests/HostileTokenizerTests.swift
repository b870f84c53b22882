@testable import LlavaUHD
import Testing

/// Tokenizer-side cases of issue 12: tens of thousands of added tokens (the prefix matcher must
/// stay linear), and `<image>` text that is not an image marker.
@Suite struct HostileTokenizerTests {
    /// 30000 added tokens sharing their first bytes (the shape of a hostile tokenizer_config.json):
    /// every one is found as the longest match, duplicates keep their first id, and keys that
    /// are prefixes of others do not shadow them.
    @Test func prefixMatcherWithThirtyThousandKeys() throws {
        var entries: [(key: [UInt8], value: Int32)] = []
        for i in 0..<30_000 { entries.append((Array("<|extra_\(i)|>".utf8), Int32(i))) }
        entries.append((Array("<|extra_1|>".utf8), 99_999))  // a duplicate: the first value stays
        entries.append((Array("<|".utf8), 40_000))
        let matcher = PrefixMatcher(entries)
        func match(_ text: String) -> (length: Int, value: Int32)? {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBufferPointer { matcher.longestMatch($0, at: 0, end: bytes.count) }
        }
        for i in stride(from: 0, to: 30_000, by: 997) {
            let key = "<|extra_\(i)|>"
            let m = try #require(match(key + "tail"))
            #expect(m.length == key.utf8.count && m.value == Int32(i))
        }
        #expect(match("<|extra_1|>")?.value == 1)
        #expect(match("<|extra_1")?.value == 40_000)  // only the short key matches whole
        #expect(match("<x") == nil)
        #expect(match("") == nil)
        #expect(PrefixMatcher().isEmpty && !matcher.isEmpty)

        // The splitter over the same tokens.
        let splitter = AddedTokenSplitter((0..<30_000).map { AddedToken(id: Int32($0), content: "<|extra_\($0)|>", special: true) })
        let text = Array("a<|extra_29999|>b<|extra_7|><|extra_".utf8)
        #expect(splitter.split(text) == [.text(0..<1), .token(29_999), .text(16..<17), .token(7), .text(28..<36)])
    }

    /// `<image>` in the system prompt, in an answer, or in a user message without images is
    /// text: the prompt is cut only where a user message put images.
    @Test func imageMarkersOnlyWhereTheUserPutImages() throws {
        for kind in [ChatTemplateKind.vicunaV1, .qwen2ChatML] {
            let template = ChatTemplate(kind: kind, systemPrompt: "Never write <image>.")
            let messages: [ChatMessage] = [.user("What is <image>?"), .assistant("It is <image>, a tag."),
                                           .user("Describe this.", images: 2),
                                           .assistant("<image>"),
                                           .user("Compare <image> and <image>", images: 2, imagesInText: true)]
            let chunks = try template.promptChunks(for: messages)
            #expect(chunks.count == 5, "\(kind): \(chunks)")
            // The joined prompt is upstream's string: every <image> written as such.
            #expect(try template.prompt(for: messages) == chunks.joined(separator: "<image>"))
            #expect(chunks[0].contains("Never write <image>.") && chunks[0].contains("What is <image>?"))
            #expect(chunks[0].contains("It is <image>, a tag."))
            #expect(chunks[2].hasPrefix("\nDescribe this."))
            #expect(chunks[2].contains("<image>"))  // the second answer, plain text
            #expect(chunks[3] == " and ")
        }
        // imagesInText with a placeholder count that is not the image count is refused.
        #expect(throws: LlavaError.self) {
            _ = try ChatTemplate(kind: .vicunaV1).promptChunks(for: [.user("<image>", images: 2, imagesInText: true)])
        }
    }

    /// The placeholder split is Python's `str.split("<image>")`.
    @Test func placeholderRangesSplitLikePython() {
        func split(_ s: String) -> [String] {
            let b = Array(s.utf8)
            return ChatTemplate.placeholderRanges(in: b).map { String(decoding: b[$0], as: UTF8.self) }
        }
        #expect(split("") == [""])
        #expect(split("<image>") == ["", ""])
        #expect(split("a<image><image>b<imag") == ["a", "", "b<imag"])
        #expect(split("<<image>>") == ["<", ">"])
    }
}
