import LlavaUHD
import TestSupport
import Testing

/// The streaming detokenizer: pieces never split a UTF-8 sequence, and joined they are exactly
/// `decode` (whose own correctness the golden sets check).
@Suite struct StreamingDetokenizerTests {
    @Test func sentencePieceGoldenStreams() throws {
        let tokenizer = try SharedTokenizers.mistral()
        for c in try GoldenSet.load(SentencePieceTokenizerTests.golden).cases {
            try checkStreaming(tokenizer, c.ids, skipSpecialTokens: true)
        }
    }

    @Test func byteLevelGoldenStreams() throws {
        let tokenizer = try SharedTokenizers.qwen2()
        for c in try GoldenSet.load(ByteLevelBPETokenizerTests.golden).cases {
            try checkStreaming(tokenizer, c.ids, skipSpecialTokens: false)
            try checkStreaming(tokenizer, c.ids, skipSpecialTokens: true)
        }
    }

    /// The em space U+2003 has no piece in the Mistral vocabulary: three byte-fallback pieces.
    /// Nothing comes out until the third.
    @Test func byteFallbackCharacterIsHeldBack() throws {
        let tokenizer = try SharedTokenizers.mistral()
        let text = "a\u{2003}b"
        let ids = try tokenizer.encode(text, addBOS: false, parseSpecial: false)
        let bytePieces = ids.compactMap { tokenizer.token(forId: $0) }.filter { $0.hasPrefix("<0x") }
        #expect(bytePieces == ["<0xE2>", "<0x80>", "<0x83>"])
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(try stream.append(id)) }
        pieces.append(stream.finish())
        #expect(pieces.joined() == text)
        let index = try #require(pieces.firstIndex(of: "\u{2003}"))
        try #require(index >= 2)
        #expect(pieces[(index - 2)..<index].allSatisfy { $0.isEmpty })
        #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") })
    }

    /// Rare CJK characters are split across byte-level tokens.
    @Test func byteLevelSplitCharacterIsHeldBack() throws {
        let tokenizer = try SharedTokenizers.qwen2()
        let text = "𠀀𠀁𠀂 ok"
        let ids = try tokenizer.encode(text, addBOS: false, parseSpecial: true)
        #expect(ids.count > 4)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        var pieces: [String] = []
        var held = 0
        for id in ids {
            let piece = try stream.append(id)
            if piece.isEmpty && stream.pendingByteCount > 0 { held += 1 }
            pieces.append(piece)
        }
        pieces.append(stream.finish())
        #expect(held > 0)
        #expect(pieces.joined() == text)
        #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") })
    }

    /// Bytes that never form a character come out as U+FFFD, as decode writes them, at the end.
    @Test func unfinishedCharacterFlushesAsReplacement() throws {
        let tokenizer = try SharedTokenizers.mistral()
        let e4 = try #require(tokenizer.id(forToken: "<0xE4>")), b8 = try #require(tokenizer.id(forToken: "<0xB8>"))
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        #expect(try stream.append(e4) == "")
        #expect(try stream.append(b8) == "")
        #expect(stream.pendingByteCount == 2)
        // sentencepiece: each byte of an invalid sequence is one U+FFFD.
        #expect(stream.finish() == "\u{FFFD}\u{FFFD}")
        #expect(try tokenizer.decode([e4, b8]) == "\u{FFFD}\u{FFFD}")

        let qwen = try SharedTokenizers.qwen2()
        // Byte-level "ä¸" is E4 B8; maximal-subpart repair gives one U+FFFD.
        let partial = try #require(qwen.id(forToken: "ä¸"))
        var qs = StreamingDetokenizer(tokenizer: qwen)
        #expect(try qs.append(partial) == "")
        #expect(qs.finish() == "\u{FFFD}")
    }

    @Test func outOfRangeIdLeavesStateUnchanged() throws {
        let tokenizer = try SharedTokenizers.mistral()
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let hello = try tokenizer.encode("Hello", addBOS: false, parseSpecial: false)
        #expect(try stream.append(hello[0]) == "Hello")
        #expect(throws: LlavaError.self) { try stream.append(32000) }
        #expect(throws: LlavaError.self) { try stream.append(ChatTemplate.imageTokenId) }
        #expect(try stream.append(hello[0]) == " Hello")
    }
}
