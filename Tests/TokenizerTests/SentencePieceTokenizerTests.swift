import LlavaUHD
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SentencePiece BPE against the official `sentencepiece` library (0.2.x): the 235-string
/// golden set made with Mistral-7B-v0.1's tokenizer.model (LLaMA-2 algorithm and settings:
/// byte fallback, dummy prefix, identity normalizer, split digits).
@Suite struct SentencePieceTokenizerTests {
    static let golden = "tok_golden_mistral_v1_spm32000.json"

    @Test func goldenIdsAndDecodedText() throws {
        let t0 = monotonicSeconds()
        let tokenizer = try SentencePieceTokenizer(modelFile: GoldenSet.mistralModel)
        let loadTime = monotonicSeconds() - t0
        let (meta, cases) = try GoldenSet.load(Self.golden)
        #expect(tokenizer.vocabularySize == meta["vocab_size"]?.intValue)
        #expect(tokenizer.bosTokenId == 1 && tokenizer.eosTokenId == 2 && tokenizer.unknownTokenId == 0)
        #expect(tokenizer.padTokenId == nil)

        let encodeTime = try GoldenSet.check(cases, with: tokenizer, parseSpecial: false, label: "SentencePiece")
        print("SentencePiece (\(cases.count) golden cases): load \(Int(loadTime * 1000)) ms, encode all \(Int(encodeTime * 1000)) ms (debug build)")
    }
}
