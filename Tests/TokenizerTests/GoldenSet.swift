import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif
import TestSupport
import Testing

/// One case of a golden tokenizer set (`Tests/Fixtures/tokenizer/tok_golden_*.json`, made by
/// `scripts/fixtures/make_token_golden.py` with the official sentencepiece / tokenizers libraries).
struct GoldenCase {
    let text: String
    let ids: [Int32]
    let decoded: String
}

enum GoldenSet {
    static func load(_ name: String) throws -> (meta: JSONValue, cases: [GoldenCase]) {
        let root = try Fixtures.json(Fixtures.root + "/tokenizer/" + name)
        guard let cases = root["cases"]?.arrayValue, let meta = root["meta"] else {
            throw LlavaError(.io, "\(name): no cases")
        }
        return (meta, try cases.map { c in
            guard let text = c["text"]?.stringValue, let ids = c["ids"]?.arrayValue,
                  let decoded = c["decoded"]?.stringValue else { throw LlavaError(.io, "\(name): malformed case") }
            return GoldenCase(text: text, ids: ids.compactMap { $0.intValue.map { Int32($0) } }, decoded: decoded)
        })
    }

    /// Encodes every case's text (no BOS) and decodes its ids (special tokens kept), recording an
    /// issue, prefixed with `label`, for each difference from the golden ids and text. Returns the
    /// seconds spent encoding.
    static func check(_ cases: [GoldenCase], with tokenizer: any Tokenizer, parseSpecial: Bool,
                      label: String) throws -> Double {
        var idMismatches = 0, textMismatches = 0
        var encodeTime = 0.0
        for c in cases {
            let t1 = monotonicSeconds()
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: parseSpecial)
            encodeTime += monotonicSeconds() - t1
            if ids != c.ids {
                idMismatches += 1
                Issue.record("\(label): ids differ for \"\(escaped(c.text))\": \(ids) vs \(c.ids)")
            }
            let decoded = try tokenizer.decode(c.ids, skipSpecialTokens: false)
            if decoded != c.decoded {
                textMismatches += 1
                Issue.record("\(label): decoded text differs for \(c.ids): \"\(escaped(decoded))\" vs \"\(escaped(c.decoded))\"")
            }
        }
        #expect(idMismatches == 0 && textMismatches == 0)
        return encodeTime
    }

    /// Paths of the real tokenizer files (scripts/setup-test-assets.sh).
    static var mistralModel: String { Fixtures.assets + "/tokenizers/tokenizer.model.v1" }
    static var qwen2Directory: String { Fixtures.assets + "/tokenizers/qwen2" }
}

/// A short printable form of a string for failure messages.
func escaped(_ s: String) -> String {
    s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined()
}

/// Tokenizers loaded once and shared by the tests that only use them (loading the 152 k-token
/// Qwen2 vocabulary takes seconds in a debug build).
enum SharedTokenizers {
    private static let mistralResult = Result { () throws(LlavaError) in
        try SentencePieceTokenizer(modelFile: GoldenSet.mistralModel)
    }
    private static let qwen2Result = Result { () throws(LlavaError) in
        try ByteLevelBPETokenizer(tokenizerJSON: GoldenSet.qwen2Directory + "/tokenizer.json")
    }

    /// Mistral-7B-v0.1's tokenizer.model, no configuration.
    static func mistral() throws -> SentencePieceTokenizer { try mistralResult.get() }
    /// The Qwen2 tokenizer.json, no configuration.
    static func qwen2() throws -> ByteLevelBPETokenizer { try qwen2Result.get() }
}
