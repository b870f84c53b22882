// libFuzzer target `tokenizer-model`: a SentencePiece tokenizer.model (protobuf), loaded as a
// model directory's tokenizer is (SentencePieceTokenizer(modelFile:): the protobuf reader, the
// normalizer's precompiled charsmap, the piece tables), then used once (encode with special
// tokens, decode, and streaming decode of every id the encode gave). Seeded with the .model
// files of Tests/Fixtures/tokenizer and the test models.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerModel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = FuzzScratch.directory + "/tokenizer.model"
    FuzzScratch.write(fuzzBytes(data, size), to: path)
    if let tokenizer = try? SentencePieceTokenizer(modelFile: path) { exercise(tokenizer) }
    return 0
}
