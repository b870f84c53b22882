// libFuzzer target `tokenizer-json`: a Hugging Face tokenizer.json (byte-level BPE: model.vocab,
// model.merges, added_tokens, pre-tokenizer and normalizer settings), loaded as a model
// directory's tokenizer is (ByteLevelBPETokenizer(tokenizerJSON:)), then used once. Seeded with
// Tests/Fixtures/tokenizer/bpe_added_tokens/tokenizer.json and a cut-down Qwen2 tokenizer.json.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = FuzzScratch.directory + "/tokenizer.json"
    FuzzScratch.write(fuzzBytes(data, size), to: path)
    if let tokenizer = try? ByteLevelBPETokenizer(tokenizerJSON: path) { exercise(tokenizer) }
    return 0
}
