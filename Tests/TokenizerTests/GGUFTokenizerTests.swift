#if canImport(Glibc)
import Glibc
#endif
@testable import LlavaUHD
import TestSupport
import Testing

/// Tokenizers rebuilt from GGUF metadata (`Tokenizers.load(gguf:)`) against the same golden
/// sets as the original files. The GGUF files are written here from the real tokenizer files
/// the way llama.cpp's convert_hf_to_gguf.py stores them: SentencePiece pieces, scores and
/// piece types (`llama`); byte-level vocabulary in id order with added tokens typed control
/// (special) or user-defined, ids without a token filled with `[PAD<id>]` of type unused, and
/// the merges as "a b" strings (`gpt2`, pre-tokenizer `qwen2`).
@Suite struct GGUFTokenizerTests {
    /// A GGUF v3 file with metadata only.
    struct MetadataWriter {
        var entries: [[UInt8]] = []
        static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        static func str(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }

        mutating func add(_ key: String, type: UInt32, _ payload: [UInt8]) { entries.append(Self.str(key) + Self.u32(type) + payload) }
        mutating func string(_ key: String, _ v: String) { add(key, type: 8, Self.str(v)) }
        mutating func u32(_ key: String, _ v: Int) { add(key, type: 4, Self.u32(UInt32(v))) }
        mutating func bool(_ key: String, _ v: Bool) { add(key, type: 7, [v ? 1 : 0]) }
        mutating func strings(_ key: String, _ v: [String]) {
            var p = Self.u32(8) + Self.u64(UInt64(v.count))
            for s in v { p += Self.str(s) }
            add(key, type: 9, p)
        }
        mutating func floats(_ key: String, _ v: [Float]) {
            var p = Self.u32(6) + Self.u64(UInt64(v.count))
            for f in v { p += Self.u32(f.bitPattern) }
            add(key, type: 9, p)
        }
        mutating func ints(_ key: String, _ v: [Int]) {
            var p = Self.u32(5) + Self.u64(UInt64(v.count))
            for i in v { p += Self.u32(UInt32(bitPattern: Int32(i))) }
            add(key, type: 9, p)
        }

        func write() throws -> String {
            var b = Array("GGUF".utf8) + Self.u32(3) + Self.u64(0) + Self.u64(UInt64(entries.count))
            for e in entries { b += e }
            var template = Array("/tmp/luhd-gguf-tok-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { throw LlavaError(.io, "mkstemp failed") }
            defer { close(fd) }
            guard b.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == b.count else { throw LlavaError(.io, "write failed") }
            return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
    }

    @Test(.enabled(if: fileExists(GoldenSet.mistralModel)))
    func sentencePieceFromGGUF() throws {
        let file = try MappedFile(path: GoldenSet.mistralModel)
        let proto = try SentencePieceModelProto.parse(file.bytes, path: GoldenSet.mistralModel)
        var w = MetadataWriter()
        w.string("general.architecture", "llama")
        w.string("tokenizer.ggml.model", "llama")
        w.strings("tokenizer.ggml.tokens", proto.pieces.map { String(decoding: $0.text, as: UTF8.self) })
        w.floats("tokenizer.ggml.scores", proto.pieces.map(\.score))
        w.ints("tokenizer.ggml.token_type", proto.pieces.map { Int($0.type.rawValue) })
        w.u32("tokenizer.ggml.bos_token_id", 1)
        w.u32("tokenizer.ggml.eos_token_id", 2)
        w.u32("tokenizer.ggml.unknown_token_id", 0)
        w.bool("tokenizer.ggml.add_space_prefix", proto.normalizer.addDummyPrefix)
        let path = try w.write()
        defer { unlink(path) }
        let tokenizer = try Tokenizers.load(gguf: GGUFFile(path: path))
        let (meta, cases) = try GoldenSet.load(SentencePieceTokenizerTests.golden)
        #expect(tokenizer is SentencePieceTokenizer)
        #expect(tokenizer.vocabularySize == meta["vocab_size"]?.intValue)
        #expect(tokenizer.bosTokenId == 1 && tokenizer.eosTokenId == 2 && tokenizer.unknownTokenId == 0 && tokenizer.addsBOSByDefault)
        var mismatches = 0
        for c in cases {
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: false)
            if ids != c.ids { mismatches += 1; Issue.record("ids differ for \"\(escaped(c.text))\": \(ids) vs \(c.ids)") }
            if try tokenizer.decode(c.ids, skipSpecialTokens: false) != c.decoded { mismatches += 1 }
        }
        #expect(mismatches == 0)
        print("GGUF llama tokenizer: \(cases.count) golden cases, \(mismatches) mismatches")
    }

    @Test(.enabled(if: fileExists(GoldenSet.qwen2Directory + "/tokenizer.json")))
    func byteLevelBPEFromGGUF() throws {
        let json = try Fixtures.json(GoldenSet.qwen2Directory + "/tokenizer.json")
        let vocab = try #require(json["model"]?["vocab"]?.objectValue)
        var byId: [Int: String] = [:]
        for (token, id) in vocab { byId[try #require(id.intValue)] = token }
        var added: [Int: (String, Bool)] = [:]
        for t in try #require(json["added_tokens"]?.arrayValue) {
            added[try #require(t["id"]?.intValue)] = (try #require(t["content"]?.stringValue), t["special"]?.boolValue ?? false)
        }
        let size = 151936   // Qwen2's padded embedding rows: ids without a token become [PAD<id>]
        var tokens: [String] = [], types: [Int] = []
        for id in 0..<size {
            if let (content, special) = added[id] {
                tokens.append(content); types.append(special ? 3 : 4)
            } else if let token = byId[id] {
                tokens.append(token); types.append(1)
            } else {
                tokens.append("[PAD\(id)]"); types.append(5)
            }
        }
        let merges = try #require(json["model"]?["merges"]?.arrayValue).map { m -> String in
            if let s = m.stringValue { return s }
            return (m.arrayValue ?? []).compactMap(\.stringValue).joined(separator: " ")
        }
        var w = MetadataWriter()
        w.string("general.architecture", "qwen2")
        w.string("tokenizer.ggml.model", "gpt2")
        w.string("tokenizer.ggml.pre", "qwen2")
        w.strings("tokenizer.ggml.tokens", tokens)
        w.ints("tokenizer.ggml.token_type", types)
        w.strings("tokenizer.ggml.merges", merges)
        w.u32("tokenizer.ggml.eos_token_id", 151645)
        w.u32("tokenizer.ggml.padding_token_id", 151643)
        w.bool("tokenizer.ggml.add_bos_token", false)
        let path = try w.write()
        defer { unlink(path) }
        let tokenizer = try Tokenizers.load(gguf: GGUFFile(path: path))
        let (meta, cases) = try GoldenSet.load(ByteLevelBPETokenizerTests.golden)
        #expect(tokenizer is ByteLevelBPETokenizer)
        #expect(tokenizer.vocabularySize == meta["vocab_total"]?.intValue)
        #expect(tokenizer.eosTokenId == 151645 && tokenizer.padTokenId == 151643 && tokenizer.bosTokenId == nil && !tokenizer.addsBOSByDefault)
        var mismatches = 0
        for c in cases {
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: true)
            if ids != c.ids { mismatches += 1; Issue.record("ids differ for \"\(escaped(c.text))\": \(ids) vs \(c.ids)") }
            if try tokenizer.decode(c.ids, skipSpecialTokens: false) != c.decoded { mismatches += 1 }
        }
        #expect(mismatches == 0)
        print("GGUF gpt2/qwen2 tokenizer: \(cases.count) golden cases, \(mismatches) mismatches")
    }

    @Test func rejectsOtherTokenizers() throws {
        var w = MetadataWriter()
        w.string("tokenizer.ggml.model", "bert")
        w.strings("tokenizer.ggml.tokens", ["a", "b"])
        let path = try w.write()
        defer { unlink(path) }
        #expect(throws: LlavaError.self) { _ = try Tokenizers.load(gguf: GGUFFile(path: path)) }
        var v = MetadataWriter()
        v.string("tokenizer.ggml.model", "gpt2")
        v.string("tokenizer.ggml.pre", "falcon")
        v.strings("tokenizer.ggml.tokens", ["a", "b"])
        v.strings("tokenizer.ggml.merges", [])
        let p2 = try v.write()
        defer { unlink(p2) }
        do { _ = try Tokenizers.load(gguf: GGUFFile(path: p2)); Issue.record("accepted the falcon pre-tokenizer") } catch { #expect(error.status == .unsupported) }
    }
}
