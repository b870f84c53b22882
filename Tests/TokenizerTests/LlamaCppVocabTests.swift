import LlavaUHD
import TestSupport
import Testing

/// `Tokenizers.load(gguf:)` on real GGUF tokenizer metadata written by llama.cpp's own
/// converter: the vocab-only files `ggml-vocab-{qwen2,llama-spm,gpt-2,llama-bpe,starcoder}.gguf`
/// of llama.cpp's `models/` folder (the last three: the `gpt2`, `llama-bpe` and StarCoder split
/// rules, StarCoder's being SmolLM's), with the test strings (`.inp`) and expected ids (`.out`) that
/// llama.cpp's `tests/test-tokenizer-0` checks. scripts/setup-test-assets.sh takes them from the
/// llama.cpp copy in PyPI's llama_cpp_python 0.3.36 sdist into `<assets>/gguf-vocab/`.
///
/// The rules follow test-tokenizer-0: `.inp` is split on "\n__ggml_vocab_test__\n" (a string
/// keeps its own newlines; text after the last separator is a last string), `.out` has one line
/// of space-separated ids per string (whitespace around a line stripped, an empty line is an
/// empty list), the pairs go into a map keyed by the string, and every string is tokenized with
/// `add_special = false` (no BOS) and `parse_special = false` (special-token text stays text).
/// test-tokenizer-0 compares ids only; the decoded text it prints is checked here to give the
/// input back exactly, and for the SPM vocabulary the round trips of test-tokenizer-1-spm are
/// checked as well (every id, and every code point).
///
/// Without the files the tests are skipped with a message; with `CI=true` they fail instead.
@Suite struct LlamaCppVocabTests {
    static let qwen2 = "ggml-vocab-qwen2.gguf"
    static let llamaSPM = "ggml-vocab-llama-spm.gguf"

    /// The byte-level vocabularies with other split rules: file and vocabulary size.
    static let otherByteLevel = [("ggml-vocab-gpt-2.gguf", 50257), ("ggml-vocab-llama-bpe.gguf", 128256),
                                 ("ggml-vocab-starcoder.gguf", 49152)]

    @Test(.enabled(if: otherByteLevel.allSatisfy { LlamaCppVocab.runnable($0.0) },
                   LlamaCppVocab.skipMessage("ggml-vocab-{gpt-2,llama-bpe,starcoder}.gguf")),
          arguments: otherByteLevel)
    func byteLevelTestCases(file: String, vocabulary: Int) throws {
        guard LlamaCppVocab.present(file) else { throw LlavaError(.io, LlamaCppVocab.skipMessage(file).rawValue + " (required when CI=true)") }
        let tokenizer = try Tokenizers.load(gguf: GGUFFile(path: LlamaCppVocab.folder + "/" + file))
        #expect(tokenizer is ByteLevelBPETokenizer)
        #expect(tokenizer.vocabularySize == vocabulary)
        let checked = try LlamaCppVocab.checkTestCases(file, tokenizer)
        #expect(checked == 46)
    }

    @Test(.enabled(if: LlamaCppVocab.runnable(qwen2), LlamaCppVocab.skipMessage(qwen2)))
    func qwen2TestCases() throws {
        let tokenizer = try LlamaCppVocab.tokenizer(Self.qwen2)
        #expect(tokenizer is ByteLevelBPETokenizer)
        let checked = try LlamaCppVocab.checkTestCases(Self.qwen2, tokenizer)
        #expect(checked == 46)
    }

    @Test(.enabled(if: LlamaCppVocab.runnable(llamaSPM), LlamaCppVocab.skipMessage(llamaSPM)))
    func llamaSPMTestCases() throws {
        let tokenizer = try LlamaCppVocab.tokenizer(Self.llamaSPM)
        #expect(tokenizer is SentencePieceTokenizer)
        #expect(tokenizer.vocabularySize == 32000)
        #expect(tokenizer.bosTokenId == 1 && tokenizer.eosTokenId == 2 && tokenizer.unknownTokenId == 0 && tokenizer.addsBOSByDefault)
        let checked = try LlamaCppVocab.checkTestCases(Self.llamaSPM, tokenizer)
        #expect(checked == 46)
    }

    /// The Qwen2 golden set (made with the `tokenizers` library from the Qwen2 tokenizer.json)
    /// through the tokenizer llama.cpp's converter stored: the same vocabulary, merges and
    /// special tokens, so every id matches. (The LLaMA SPM file holds LLaMA's 32000-piece
    /// vocabulary, not Mistral-7B-v0.1's of the SentencePiece golden set, e.g. id 1000 is "ied"
    /// there and "ла" in Mistral's, so that golden set does not apply to it.)
    @Test(.enabled(if: LlamaCppVocab.runnable(qwen2), LlamaCppVocab.skipMessage(qwen2)))
    func qwen2GoldenSet() throws {
        let tokenizer = try LlamaCppVocab.tokenizer(Self.qwen2)
        let (meta, cases) = try GoldenSet.load(ByteLevelBPETokenizerTests.golden)
        #expect(tokenizer.vocabularySize == meta["vocab_total"]?.intValue)
        var mismatches = 0
        for c in cases {
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: true)
            if ids != c.ids { mismatches += 1; Issue.record("ids differ for \"\(escaped(c.text))\": \(ids) vs \(c.ids)") }
            let decoded = try tokenizer.decode(c.ids, skipSpecialTokens: false)
            if decoded != c.decoded { mismatches += 1; Issue.record("decoded text differs for \(c.ids): \"\(escaped(decoded))\" vs \"\(escaped(c.decoded))\"") }
        }
        #expect(mismatches == 0)
        print("llama.cpp \(Self.qwen2): \(cases.count) Qwen2 golden cases, \(mismatches) mismatches")
    }

    /// The converter that wrote this file filled ids 151646...151935 (embedding rows without a
    /// token) with `[PAD<id>]` typed user-defined (today's converter types them unused).
    /// llama.cpp matches user-defined tokens in any text, so it would turn "[PAD151646]" into
    /// id 151646; the Qwen2 tokenizer has no such tokens and encodes that text as plain text.
    /// The loader follows the Qwen2 tokenizer: the fillers are left out, the vocabulary has the
    /// Qwen2 tokenizer's 151646 ids, and filler text encodes as the tokenizer.json tokenizer
    /// (checked against the golden set by ByteLevelBPETokenizerTests) encodes it.
    @Test(.enabled(if: LlamaCppVocab.runnable(qwen2), LlamaCppVocab.skipMessage(qwen2)))
    func qwen2PadFillersAreNotTokens() throws {
        let tokenizer = try LlamaCppVocab.tokenizer(Self.qwen2)
        let reference = try SharedTokenizers.qwen2()
        #expect(tokenizer.vocabularySize == reference.vocabularySize)
        #expect(tokenizer.token(forId: 151646) == nil && tokenizer.token(forId: 151935) == nil)
        for text in ["[PAD151646]", "a [PAD151935] b<|im_end|>", "[PAD151645][PAD0]"] {
            #expect(try tokenizer.encode(text, addBOS: false, parseSpecial: true) == reference.encode(text, addBOS: false, parseSpecial: true))
        }
    }

    /// test-tokenizer-1-spm's first check: for every id, the text it decodes to on its own
    /// (special tokens rendered) encodes (special-token text parsed) to ids that decode to the
    /// same text. Byte-fallback ids 0x80...0xFF decode to a lone non-UTF-8 byte, which this
    /// library's encoder refuses by contract (`.invalidUTF8`, as the C ABI promises), so those
    /// 128 ids are left out; llama.cpp tokenizes raw bytes.
    @Test(.enabled(if: LlamaCppVocab.runnable(llamaSPM), LlamaCppVocab.skipMessage(llamaSPM)))
    func llamaSPMEveryIdRoundTrips() throws {
        let tokenizer = try LlamaCppVocab.tokenizer(Self.llamaSPM)
        var checked = 0, failures = 0, notUTF8 = 0
        for id in 0..<Int32(tokenizer.vocabularySize) {
            let text = try tokenizer.decodeBytes([id], skipSpecialTokens: false)
            guard String(validating: text, as: UTF8.self) != nil else { notUTF8 += 1; continue }
            let ids = try tokenizer.encode(utf8: text, addBOS: false, parseSpecial: true)
            let again = try tokenizer.decodeBytes(ids, skipSpecialTokens: false)
            checked += 1
            if again != text {
                failures += 1
                Issue.record("id \(id) decodes to \"\(escaped(String(decoding: text, as: UTF8.self)))\", its encoding \(ids) to \"\(escaped(String(decoding: again, as: UTF8.self)))\"")
            }
        }
        #expect(notUTF8 == 128)
        #expect(checked == 32000 - 128 && failures == 0)
        print("llama.cpp \(Self.llamaSPM): \(checked) ids round-trip checked, \(failures) failures, \(notUTF8) lone non-UTF-8 bytes left out")
    }

    /// test-tokenizer-1-spm's second check: every code point outside the surrogates and
    /// U+40000...U+E0000, encoded alone, decodes back to itself. llama.cpp exempts U+2581 "▁",
    /// which SentencePiece reads as its space mark (it decodes to " ").
    @Test(.enabled(if: LlamaCppVocab.runnable(llamaSPM), LlamaCppVocab.skipMessage(llamaSPM)))
    func llamaSPMEveryCodePointRoundTrips() throws {
        let tokenizer = try LlamaCppVocab.tokenizer(Self.llamaSPM)
        var checked = 0, failures = 0
        for cp in UInt32(0)..<0x110000 {
            if (0xD800...0xDFFF).contains(cp) || (0x40000...0xE0000).contains(cp) || cp == 0x2581 { continue }
            guard let scalar = Unicode.Scalar(cp) else { continue }
            let text = Array(String(Character(scalar)).utf8)
            let again = try tokenizer.decodeBytes(try tokenizer.encode(utf8: text, addBOS: false, parseSpecial: true),
                                                  skipSpecialTokens: false)
            checked += 1
            if again != text {
                failures += 1
                if failures <= 20 { Issue.record("U+\(String(cp, radix: 16, uppercase: true)) decodes back to \(again)") }
            }
        }
        #expect(failures == 0)
        print("llama.cpp \(Self.llamaSPM): \(checked) code points round-trip checked, \(failures) failures")
    }
}

/// The llama.cpp vocab files in `<assets>/gguf-vocab/` and their test cases.
enum LlamaCppVocab {
    static var folder: String { Fixtures.assets + "/gguf-vocab" }

    static func present(_ name: String) -> Bool {
        let base = folder + "/" + name
        return fileExists(base) && fileExists(base + ".inp") && fileExists(base + ".out")
    }

    /// Runs when the files are there, and on CI (where their absence then fails the test).
    static func runnable(_ name: String) -> Bool { present(name) || Fixtures.onCI }

    static func skipMessage(_ name: String) -> Comment {
        "\(folder)/\(name)(.inp, .out) missing: run scripts/setup-test-assets.sh"
    }

    /// The tokenizer of a vocab file, loaded once per file (the Qwen2 one takes seconds in a
    /// debug build). Throws a clear failure when the files are missing.
    static func tokenizer(_ name: String) throws -> any Tokenizer {
        guard present(name) else {
            throw LlavaError(.io, skipMessage(name).rawValue + " (required when CI=true)")
        }
        return try (name == LlamaCppVocabTests.qwen2 ? qwen2Result : llamaSPMResult).get()
    }

    private static let qwen2Result = Result { () throws(LlavaError) in
        try Tokenizers.load(gguf: GGUFFile(path: folder + "/" + LlamaCppVocabTests.qwen2))
    }
    private static let llamaSPMResult = Result { () throws(LlavaError) in
        try Tokenizers.load(gguf: GGUFFile(path: folder + "/" + LlamaCppVocabTests.llamaSPM))
    }

    /// One test string (UTF-8 bytes) and the ids llama.cpp expects for it.
    struct TestCase {
        let text: [UInt8]
        let ids: [Int32]
    }

    /// The `.inp`/`.out` pairs, read by test-tokenizer-0's rules (see `LlamaCppVocabTests`):
    /// one case per distinct string, the last `.out` line winning for a repeated string.
    static func testCases(_ name: String) throws -> [TestCase] {
        let base = folder + "/" + name
        let input = try readWholeFile(base + ".inp")
        let output = try readWholeFile(base + ".out")
        let separator = Array("\n__ggml_vocab_test__\n".utf8)
        var strings: [[UInt8]] = []
        var start = 0
        while start < input.count {
            guard let next = find(separator, in: input, from: start) else {
                strings.append(Array(input[start...]))
                break
            }
            strings.append(Array(input[start..<next]))
            start = next + separator.count
        }
        // getline: lines end at "\n"; a final line without one still counts, no empty last line.
        var lines = output.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        if output.last == UInt8(ascii: "\n") { lines.removeLast() }
        guard strings.count == lines.count else {
            throw LlavaError(.io, "\(base): \(strings.count) test strings but \(lines.count) lines of ids")
        }
        var order: [[UInt8]] = []
        var idsOf: [[UInt8]: [Int32]] = [:]
        for (text, line) in zip(strings, lines) {
            let ids = try line.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }).map { field -> Int32 in
                guard let id = Int32(String(decoding: field, as: UTF8.self)) else {
                    throw LlavaError(.io, "\(base).out: '\(String(decoding: field, as: UTF8.self))' is not a token id")
                }
                return id
            }
            if idsOf.updateValue(ids, forKey: text) == nil { order.append(text) }
        }
        return order.compactMap { text in idsOf[text].map { TestCase(text: text, ids: $0) } }
    }

    /// Encodes every test string as test-tokenizer-0 does (no BOS, special-token text as text)
    /// and compares the ids; decodes the expected ids and compares with the string. Returns the
    /// number of cases checked.
    static func checkTestCases(_ name: String, _ tokenizer: any Tokenizer) throws -> Int {
        let cases = try testCases(name)
        var idFailures = 0, textFailures = 0
        for c in cases {
            let shown = escaped(String(decoding: c.text, as: UTF8.self))
            let ids = try tokenizer.encode(utf8: c.text, addBOS: false, parseSpecial: false)
            if ids != c.ids {
                idFailures += 1
                Issue.record("\(name): \"\(shown)\" encodes to \(ids), llama.cpp expects \(c.ids)")
            }
            let decoded = try tokenizer.decodeBytes(c.ids, skipSpecialTokens: false)
            if decoded != c.text {
                textFailures += 1
                Issue.record("\(name): \(c.ids) decodes to \"\(escaped(String(decoding: decoded, as: UTF8.self)))\", not \"\(shown)\"")
            }
        }
        print("llama.cpp \(name): \(cases.count) test cases, \(idFailures) id mismatches, \(textFailures) round-trip mismatches")
        return cases.count
    }

    /// The first index at or after `from` where `needle` occurs in `haystack`.
    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = from
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
