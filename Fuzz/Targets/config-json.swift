// libFuzzer target `config-json`: a model directory's config.json, parsed and validated by
// ModelConfig(bytes:) (the JSON reader, then every key of the language model, vision tower,
// projector and image-slicing settings). Seeded with the
// config.json files of the test models, Tests/Fixtures/hf and the malformed-config corpus.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(fuzzBytes(data, size))
    _ = try? ModelConfig(bytes: bytes)
    return 0
}
