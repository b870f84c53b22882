import LlavaUHD
import TestSupport
import Testing

/// tok_edge_golden.json (scripts/fixtures/make_tokenizer_edge_golden.py, official sentencepiece 0.2.x
/// and tokenizers 0.23.x): SentencePiece options that LLaMA leaves off, and decoding of
/// hand-picked id sequences (broken byte-fallback runs, control pieces, split characters).
@Suite struct EdgeCaseTests {
    static func golden() throws -> JSONValue {
        try Fixtures.json(Fixtures.root + "/tokenizer/tok_edge_golden.json")
    }

    static func ids(_ v: JSONValue?) -> [Int32] {
        (v?.arrayValue ?? []).compactMap { $0.intValue.map(Int32.init) }
    }

    /// Encode and decode of the corpus, and the crafted decodes, for one trained model.
    @Test(arguments: ["spm_nfkc_bytes", "spm_identity_unk"])
    func trainedSentencePieceModel(_ name: String) throws {
        let g = try #require(try Self.golden()[name])
        let tokenizer = try SentencePieceTokenizer(modelFile: Fixtures.root + "/tokenizer/\(name).model")
        #expect(tokenizer.vocabularySize == g["vocab_size"]?.intValue)
        #expect(tokenizer.bosTokenId.map(Int.init) == g["bos_id"]?.intValue)
        #expect(tokenizer.eosTokenId.map(Int.init) == g["eos_id"]?.intValue)
        #expect(tokenizer.unknownTokenId.map(Int.init) == g["unk_id"]?.intValue)
        let cases = try #require(g["cases"]?.arrayValue)
        #expect(cases.count == 235)
        var mismatches = 0
        for c in cases {
            let text = c["text"]?.stringValue ?? ""
            let expected = Self.ids(c["ids"])
            let ids = try tokenizer.encode(text, addBOS: false, parseSpecial: false)
            if ids != expected {
                mismatches += 1
                Issue.record("\(name): ids differ for \"\(escaped(text))\": \(ids) vs \(expected)")
            }
            let decoded = try tokenizer.decode(expected, skipSpecialTokens: false)
            if decoded != c["decoded"]?.stringValue {
                mismatches += 1
                Issue.record("\(name): decoded \(expected) as \"\(escaped(decoded))\", expected \"\(escaped(c["decoded"]?.stringValue ?? ""))\"")
            }
        }
        for d in try #require(g["decodes"]?.arrayValue) {
            let decoded = try tokenizer.decode(Self.ids(d["ids"]), skipSpecialTokens: false)
            #expect(decoded == d["decoded"]?.stringValue, "\(name): decode \(Self.ids(d["ids"]))")
        }
        #expect(mismatches == 0)
    }

    @Test func trainedModelUsesUnusedPieces() throws {
        // Merges reach the UNUSED pieces in 20 corpus texts (the generator checked that their ids
        // change when the pieces are marked); they are split back, so no encoded id is one.
        let g = try Self.golden()
        let unused = Set(Self.ids(g["meta"]?["unused_piece_ids"]))
        #expect(unused.count == 8)
        #expect(g["meta"]?["texts_changed_by_unused"]?.arrayValue?.count == 20)
        let tokenizer = try SentencePieceTokenizer(modelFile: Fixtures.root + "/tokenizer/spm_nfkc_bytes.model")
        var all: [Int32] = []
        for c in try #require(g["spm_nfkc_bytes"]?["cases"]?.arrayValue) {
            all += try tokenizer.encode(c["text"]?.stringValue ?? "", addBOS: false, parseSpecial: false)
        }
        #expect(unused.isDisjoint(with: all))
    }

    @Test func mistralDecodes() throws {
        let tokenizer = try SharedTokenizers.mistral()
        for d in try #require(try Self.golden()["mistral_decodes"]?.arrayValue) {
            let ids = Self.ids(d["ids"])
            #expect(try tokenizer.decode(ids, skipSpecialTokens: false) == d["decoded"]?.stringValue, "decode \(ids)")
            try checkStreaming(tokenizer, ids, skipSpecialTokens: false)
            try checkStreaming(tokenizer, ids, skipSpecialTokens: true)
        }
    }

    @Test func qwen2Decodes() throws {
        let tokenizer = try SharedTokenizers.qwen2()
        for d in try #require(try Self.golden()["qwen2_decodes"]?.arrayValue) {
            let ids = Self.ids(d["ids"])
            #expect(try tokenizer.decode(ids, skipSpecialTokens: false) == d["decoded"]?.stringValue, "decode \(ids)")
            #expect(try tokenizer.decode(ids, skipSpecialTokens: true) == d["decoded_skip_special"]?.stringValue, "decode \(ids), skipping specials")
            try checkStreaming(tokenizer, ids, skipSpecialTokens: false)
            try checkStreaming(tokenizer, ids, skipSpecialTokens: true)
        }
    }

    /// Added tokens with lstrip / rstrip / single_word, and a non-special added token, in a small
    /// byte-level tokenizer.json written by the generator with `tokenizers`.
    @Test func addedTokenOptions() throws {
        let tokenizer = try ByteLevelBPETokenizer(tokenizerJSON: Fixtures.root + "/tokenizer/bpe_added_tokens/tokenizer.json")
        let cases = try #require(try Self.golden()["bpe_added_tokens"]?.arrayValue)
        #expect(cases.count == 18)
        for c in cases {
            let text = c["text"]?.stringValue ?? ""
            let expected = Self.ids(c["ids"])
            #expect(try tokenizer.encode(text, addBOS: false, parseSpecial: true) == expected, "\"\(escaped(text))\"")
            #expect(try tokenizer.decode(expected, skipSpecialTokens: false) == c["decoded"]?.stringValue)
            #expect(try tokenizer.decode(expected, skipSpecialTokens: true) == c["decoded_skip_special"]?.stringValue)
        }
    }

    /// A vocabulary without a token for some byte (here U+0001, "ā" in the byte-level alphabet;
    /// found by the tokenizer-json fuzz target, which trapped on the missing id in a merge
    /// look-up): the byte is dropped before merging, as Hugging Face's BPE without an unk token
    /// drops it, so "\u{01}ain" merges to the one token "ain" and a word of missing bytes is empty.
    @Test func byteWithoutTokenIsDroppedBeforeMerging() throws {
        let source = Fixtures.root + "/tokenizer/bpe_added_tokens/tokenizer.json"
        let text = String(decoding: try readWholeFile(source), as: UTF8.self)
        let entry = "\"\u{0101}\": 1,"   // "ā": byte 0x01's token
        #expect(text.contains(entry))
        let directory = TemporaryDirectory()
        directory.write("tokenizer.json", text.replacing(entry, with: ""))
        let full = try ByteLevelBPETokenizer(tokenizerJSON: source)
        let tokenizer = try ByteLevelBPETokenizer(tokenizerJSON: directory.path + "/tokenizer.json")
        let ain = try full.encode("ain", addBOS: false, parseSpecial: false)
        #expect(ain.count == 1)
        #expect(try tokenizer.encode("\u{01}ain", addBOS: false, parseSpecial: false) == ain)
        #expect(try tokenizer.encode("a\u{01}in", addBOS: false, parseSpecial: false)
                == full.encode("a", addBOS: false, parseSpecial: false) + full.encode("in", addBOS: false, parseSpecial: false))
        #expect(try tokenizer.encode("\u{01}\u{01}", addBOS: false, parseSpecial: false).isEmpty)
        #expect(try tokenizer.encode("\u{01}", addBOS: false, parseSpecial: false).isEmpty)
    }
}

/// Streams `ids` one at a time and checks that the pieces join to `decode(ids)`, and that no
/// piece ends inside a character that the following ids complete.
func checkStreaming(_ tokenizer: any Tokenizer, _ ids: [Int32], skipSpecialTokens: Bool,
                    sourceLocation: SourceLocation = #_sourceLocation) throws {
    var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
    var pieces: [String] = []
    for id in ids { pieces.append(try stream.append(id)) }
    pieces.append(stream.finish())
    let whole = try tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
    #expect(pieces.joined() == whole, "streamed \(ids)", sourceLocation: sourceLocation)
    #expect(stream.pendingByteCount == 0, sourceLocation: sourceLocation)
}
