// libFuzzer target `gguf`: a GGUF file (header, metadata key/values, tensor infos), loaded as
// the GGUF model path does: GGUFFile's validation, the language-model configuration and the
// tokenizer read from its metadata, then every tensor looked up as a view and as a quantized
// matrix (the bounds checks against the data section). Seeded with Tests/Fixtures/gguf and
// small GGUF files made from the test assets' vocabularies' headers.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = FuzzScratch.directory + "/model.gguf"
    FuzzScratch.write(fuzzBytes(data, size), to: path)
    guard let file = try? GGUFFile(path: path) else { return 0 }
    _ = try? LanguageModelConfig(gguf: file)
    if let tokenizer = try? Tokenizers.load(gguf: file) {
        if let ids = try? tokenizer.encode(utf8: Array("Hello <s> world\n".utf8), addBOS: true, parseSpecial: true) {
            _ = try? tokenizer.decode(ids)
        }
    }
    for info in file.tensors {
        _ = try? file.tensor(info.name)
        _ = try? file.matrix(info.name)
    }
    return 0
}
