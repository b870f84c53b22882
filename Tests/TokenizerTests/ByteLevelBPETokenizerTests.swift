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
        let encodeTime = try GoldenSet.check(cases, with: tokenizer, parseSpecial: true, label: label)
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

    /// A text whose NFC form could pass 2^31 − 1 bytes (the merge positions are Int32) is
    /// refused with a status, naming its length, before any work (716 MB of memory for the text).
    @Test func textOverTheLengthLimitIsRefused() throws {
        let tokenizer = try SharedTokenizers.qwen2()
        let longest = TokenizerInputLimit.maxNormalizedBytes / 3
        let text = [UInt8](repeating: 0x20, count: longest + 1)
        let error = #expect(throws: LlavaError.self) {
            try tokenizer.encode(utf8: text, addBOS: false, parseSpecial: true)
        }
        #expect(error?.status == .invalidArgument && error?.message.contains("\(longest + 1) bytes") == true)
    }
}
