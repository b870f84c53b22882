@testable import LlavaUHD
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed (with its files) at deinit.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/llavauhd-tokenizer-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func write(_ name: String, _ bytes: [UInt8]) {
        let f = fopen(path + "/" + name, "wb")!
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }

    func write(_ name: String, _ text: String) { write(name, Array(text.utf8)) }

    deinit {
        if let d = opendir(path) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(d)
        }
        rmdir(path)
    }
}

func expectStatus(_ status: Status, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a \(status.name) error, got success", sourceLocation: sourceLocation)
    } catch let e as LlavaError {
        #expect(e.status == status, "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

/// Choosing the tokenizer from a directory, the vocabulary API, and what bad input gives.
@Suite struct TokenizerLoadingTests {
    @Test func picksTheImplementationFromTheFiles() throws {
        let spm = try Tokenizers.load(directory: Fixtures.model("coffee-v2-mask7"))
        #expect(spm is SentencePieceTokenizer)
        #expect(spm.addsBOSByDefault && spm.bosTokenId == 1 && spm.eosTokenId == 2)
        let qwen = try Tokenizers.load(directory: Fixtures.model("chelsea-qwen2-mask5") + "/")
        #expect(qwen is ByteLevelBPETokenizer)
        #expect(!qwen.addsBOSByDefault && qwen.bosTokenId == nil && qwen.eosTokenId == 151645 && qwen.padTokenId == 151643)

        // vocab.json + merges.txt + tokenizer_config.json only.
        let dir = TemporaryDirectory()
        for name in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
            dir.write(name, try readWholeFile(Fixtures.model("chelsea-qwen2-mask5") + "/" + name))
        }
        let slow = try Tokenizers.load(directory: dir.path)
        #expect(slow is ByteLevelBPETokenizer)
        #expect(try slow.encode("<|im_start|>user\nHi<|im_end|>", addBOS: false, parseSpecial: true)
                == qwen.encode("<|im_start|>user\nHi<|im_end|>", addBOS: false, parseSpecial: true))
    }

    @Test func vocabularyLookups() throws {
        let spm = try SharedTokenizers.mistral()
        #expect(spm.token(forId: 13) == "<0x0A>" && spm.piece(forId: 13, renderSpecial: false) == [0x0A])
        #expect(spm.id(forToken: "▁the") == 272 && spm.piece(forId: 272, renderSpecial: false) == Array(" the".utf8))
        #expect(spm.token(forId: 2) == "</s>" && spm.isSpecialToken(2) && spm.isSpecialToken(0) && !spm.isSpecialToken(272))
        #expect(spm.piece(forId: 2, renderSpecial: false) == [] && spm.piece(forId: 2, renderSpecial: true) == Array("</s>".utf8))
        #expect(spm.token(forId: -1) == nil && spm.token(forId: 32000) == nil && spm.id(forToken: "no such piece") == nil)

        let qwen = try SharedTokenizers.qwen2()
        #expect(qwen.token(forId: 198) == "Ċ" && qwen.piece(forId: 198, renderSpecial: false) == [0x0A])
        #expect(qwen.id(forToken: "Ġhello") == 23811 && qwen.piece(forId: 23811, renderSpecial: false) == Array(" hello".utf8))
        #expect(qwen.id(forToken: "<|im_end|>") == 151645 && qwen.token(forId: 151645) == "<|im_end|>")
        #expect(qwen.isSpecialToken(151645) && !qwen.isSpecialToken(198))
        #expect(qwen.piece(forId: 151645, renderSpecial: false) == [] && qwen.piece(forId: 151645, renderSpecial: true) == Array("<|im_end|>".utf8))
        #expect(qwen.token(forId: 151646) == nil && qwen.piece(forId: -200, renderSpecial: true) == nil)
        expectStatus(.invalidArgument) { _ = try qwen.decode([151646]) }
        expectStatus(.invalidArgument) { _ = try spm.decode([ChatTemplate.imageTokenId]) }
    }

    @Test func invalidUTF8IsRejected() throws {
        let spm = try SharedTokenizers.mistral()
        let qwen = try SharedTokenizers.qwen2()
        let bad: [[UInt8]] = [[0xFF], [0x61, 0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF4, 0x90, 0x80, 0x80],
                              Array("ok <image> then".utf8) + [0x80]]
        for bytes in bad {
            for t in [spm, qwen] as [any Tokenizer] {
                expectStatus(.invalidUTF8) { _ = try t.encode(utf8: bytes, addBOS: true, parseSpecial: true) }
                expectStatus(.invalidUTF8) { _ = try t.encode(utf8: bytes, addBOS: false, parseSpecial: false) }
                expectStatus(.invalidUTF8) { _ = try t.encodeImagePrompt(utf8: bytes) }
            }
        }
        #expect(try spm.encode(utf8: [], addBOS: true, parseSpecial: true) == [1])
        #expect(try qwen.encode(utf8: [], addBOS: true, parseSpecial: true) == [])
    }

    @Test func missingFilesAreBadTokenizer() {
        let empty = TemporaryDirectory()
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: empty.path) }
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: empty.path + "/nonexistent") }
        expectStatus(.badTokenizer) { _ = try SentencePieceTokenizer(modelFile: empty.path + "/tokenizer.model") }
        expectStatus(.badTokenizer) { _ = try ByteLevelBPETokenizer(tokenizerJSON: empty.path + "/tokenizer.json") }
        let onlyVocab = TemporaryDirectory()
        onlyVocab.write("vocab.json", "{}")
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: onlyVocab.path) }
    }

    /// Prefixes of a real tokenizer.model, and copies with changed bytes: an error or a working
    /// tokenizer, never a crash.
    @Test func hostileSentencePieceModels() throws {
        let model = try readWholeFile(GoldenSet.mistralModel)
        let dir = TemporaryDirectory()
        var rejected = 0
        // Truncations: every 7919th byte (in the pieces, which come first, or at a piece boundary
        // without the trainer spec: always rejected) and a few cuts in the specs at the end.
        let strideCuts = Array(stride(from: 0, to: model.count, by: 7919))
        for cut in strideCuts + [model.count - 300, model.count - 50, model.count - 7, model.count - 1] {
            dir.write("tokenizer.model", Array(model[..<cut]))
            do {
                let t = try SentencePieceTokenizer(modelFile: dir.path + "/tokenizer.model")
                _ = try t.encode("Hello world", addBOS: true, parseSpecial: true)
            } catch {
                #expect(error.status == .badTokenizer || error.status == .unsupported, "\(error)")
                rejected += 1
            }
        }
        #expect(rejected >= strideCuts.count)
        // Random byte changes.
        var rng = TestRandom(seed: 42)
        for _ in 0..<60 {
            var copy = model
            for _ in 0..<4 { copy[Int(rng.next() % UInt64(copy.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            dir.write("tokenizer.model", copy)
            do {
                let t = try SentencePieceTokenizer(modelFile: dir.path + "/tokenizer.model")
                _ = try t.encode("Hello wörld 😀 123", addBOS: true, parseSpecial: true)
                _ = try t.decode(Array(0..<Int32(t.vocabularySize)).filter { $0 % 97 == 0 }, skipSpecialTokens: false)
            } catch {
                #expect(error.status == .badTokenizer || error.status == .unsupported || error.status == .invalidArgument, "\(error)")
            }
        }
        // Specific malformations.
        let cases: [[UInt8]] = [
            [0x0A, 0x80],                        // length varint cut short
            [0x0A, 0x05, 0x0A, 0x01],            // piece message longer than the file
            [0x0B],                              // wire type 3 (groups)
            [0x08] + [UInt8](repeating: 0xFF, count: 11),  // varint too long
            [0x12, 0x02, 0x18, 0x02],            // trainer_spec only: BPE, no pieces
            [0x0A, 0x02, 0x0A, 0x00, 0x12, 0x02, 0x18, 0x02],  // an empty piece
        ]
        for bytes in cases {
            dir.write("tokenizer.model", bytes)
            expectStatus(.badTokenizer) { _ = try SentencePieceTokenizer(modelFile: dir.path + "/tokenizer.model") }
        }
    }

    @Test func hostileJSONFiles() throws {
        let dir = TemporaryDirectory()
        let real = try readWholeFile(Fixtures.model("chelsea-qwen2-mask5") + "/tokenizer.json")
        for cut in [0, 1, 100, real.count / 2, real.count - 2] {
            dir.write("tokenizer.json", Array(real[..<cut]))
            expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: dir.path) }
        }
        let pipeline = #""normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\#(ByteLevelPreTokenizer.qwen2Pattern.replacingBackslashes())"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}, "decoder": {"type": "ByteLevel"}"#
        let bad = [
            "[]", "{}", #"{"model": 3}"#, #"{"model": {"type": "BPE", "vocab": [], "merges": []}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", 1]]}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, \#(pipeline)}"#,  // byte tokens missing
            #"{"model": {"type": "BPE", "vocab": {"a": 0, "a": 1}, "merges": []}, \#(pipeline)}"#,
            #"{"added_tokens": [{"id": 1}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, \#(pipeline)}"#,
            #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, \#(pipeline), "x": "\u{FFFF}"#,
        ]
        for text in bad {
            dir.write("tokenizer.json", text)
            expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: dir.path) }
        }
        // Pipelines the library does not implement are `.unsupported`.
        for text in [#"{"model": {"type": "WordPiece", "vocab": {}}}"#,
                     #"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}"#,
                     #"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "NFKC"}}"#] {
            dir.write("tokenizer.json", text)
            expectStatus(.unsupported) { _ = try Tokenizers.load(directory: dir.path) }
        }
        // A malformed tokenizer_config.json next to a good tokenizer.model.
        let spmDir = TemporaryDirectory()
        spmDir.write("tokenizer.model", try readWholeFile(GoldenSet.mistralModel))
        spmDir.write("tokenizer_config.json", #"{"add_bos_token": true,"#)
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: spmDir.path) }
        spmDir.write("tokenizer_config.json", #"{"added_tokens_decoder": {"x": {"content": "<s>"}}}"#)
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: spmDir.path) }
        // merges.txt with a line that is not two tokens.
        let slow = TemporaryDirectory()
        slow.write("vocab.json", try readWholeFile(GoldenSet.qwen2Directory + "/vocab.json"))
        slow.write("merges.txt", "#version: 0.2\nĠ Ġ\nĠĠ ĠĠ Ġ\n")
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: slow.path) }
        slow.write("merges.txt", [0x61, 0x20, 0xFF, 0x0A])
        expectStatus(.badTokenizer) { _ = try Tokenizers.load(directory: slow.path) }
    }

    /// UnicodeNFC against Python's unicodedata.normalize("NFC", ·) (nfc_cases.json, written by
    /// scripts/dev/generate_unicode_nfc_tables.py with the tables).
    @Test func nfcMatchesPython() throws {
        let root = try Fixtures.json(Fixtures.root + "/tokenizer/nfc_cases.json")
        #expect(root["unicode_version"]?.stringValue == UnicodeNFCTables.unicodeVersion)
        let cases = try #require(root["cases"]?.arrayValue)
        #expect(cases.count > 7000)
        var mismatches = 0
        for c in cases {
            guard let pair = c.arrayValue, pair.count == 2, let input = pair[0].stringValue, let expected = pair[1].stringValue else {
                Issue.record("malformed case")
                continue
            }
            let out = UnicodeNFC.normalize(Array(input.utf8)[...])
            if out != Array(expected.utf8) {
                mismatches += 1
                if mismatches < 10 { Issue.record("NFC(\(escaped(input))) = \(escaped(String(decoding: out, as: UTF8.self))), expected \(escaped(expected))") }
            }
        }
        #expect(mismatches == 0)
    }
}


extension String {
    /// The string with each backslash doubled (for embedding in a JSON string literal).
    func replacingBackslashes() -> String {
        var out = ""
        for c in self { out += c == "\\" ? "\\\\" : String(c) }
        return out
    }
}
