// libFuzzer target `tokenizer-config`: tokenizer_config.json (special tokens as strings or
// objects, added_tokens_decoder, add_bos_token, legacy, tokenizer_class), loaded through
// Tokenizers.load(directory:) next to a fixed SentencePiece tokenizer.model and next to a fixed
// vocab.json + merges.txt (the two kinds read it differently), then each tokenizer used once.
// Seeded with the tokenizer_config.json files of Tests/Fixtures and the test assets.
@testable import LlavaUHD

/// Two model folders with fixed tokenizer files, set up once per process.
private let folders: [String] = {
    let spm = FuzzScratch.folder("spm"), bpe = FuzzScratch.folder("bpe")
    FuzzScratch.copy(fuzzFixture("LLAVAUHD_FUZZ_SPM_MODEL"), to: spm + "/tokenizer.model")
    let vocab = fuzzFixture("LLAVAUHD_FUZZ_BPE_FILES")
    FuzzScratch.copy(vocab + "/vocab.json", to: bpe + "/vocab.json")
    FuzzScratch.copy(vocab + "/merges.txt", to: bpe + "/merges.txt")
    return [spm, bpe]
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitTokenizerConfig(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    fuzzInitialize { _ = folders }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    for folder in folders {
        FuzzScratch.write(bytes, to: folder + "/tokenizer_config.json")
        if let tokenizer = try? Tokenizers.load(directory: folder) { exercise(tokenizer) }
    }
    return 0
}
