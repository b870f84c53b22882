import LlavaUHD
import TestSupport
import Testing

/// Qwen2 byte-level BPE against Hugging Face `tokenizers` 0.23 (cross-checked with `tiktoken`
/// by the generator): the 235-string golden set, through both file layouts.
@Suite struct ByteLevelBPETokenizerTests {
    static let golden = "tok_golden_qwen2_bpe.json"

    func check(_ tokenizer: any Tokenizer, label: String, loadTime: Double) throws {
        let (meta, cases) = try GoldenSet.load(Self.golden)
        #expect(tokenizer.vocabularySize == meta["vocab_total"]?.intValue)
        var idMismatches = 0, textMismatches = 0
        var encodeTime = 0.0
        for c in cases {
            let t1 = monotonicSeconds()
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: true)
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
        print("Qwen2 BPE via \(label) (\(cases.count) golden cases): load \(Int(loadTime * 1000)) ms, encode all \(Int(encodeTime * 1000)) ms (debug build)")
    }

    @Test func goldenThroughTokenizerJSON() throws {
        let t0 = monotonicSeconds()
        let tokenizer = try ByteLevelBPETokenizer(tokenizerJSON: GoldenSet.qwen2Directory + "/tokenizer.json")
        try check(tokenizer, label: "tokenizer.json", loadTime: monotonicSeconds() - t0)
    }

    /// vocab.json + merges.txt carry no added tokens: they come from the tokenizer_config.json
    /// of the Qwen2 case's model directory (made for the same files).
    @Test func goldenThroughVocabAndMerges() throws {
        let t0 = monotonicSeconds()
        let tokenizer = try ByteLevelBPETokenizer(vocabJSON: GoldenSet.qwen2Directory + "/vocab.json",
                                                  merges: GoldenSet.qwen2Directory + "/merges.txt",
                                                  configDirectory: Fixtures.model("chelsea-qwen2-mask5"))
        try check(tokenizer, label: "vocab.json + merges.txt", loadTime: monotonicSeconds() - t0)
        #expect(tokenizer.eosTokenId == 151645 && tokenizer.padTokenId == 151643 && tokenizer.bosTokenId == nil)
        #expect(!tokenizer.addsBOSByDefault)
    }
}
