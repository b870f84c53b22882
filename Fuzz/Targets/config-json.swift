// libFuzzer target `config-json`: a model directory's config.json, parsed and validated by
// ModelConfig(bytes:) (the JSON reader, then every key of the language model, vision tower,
// projector and image-slicing settings), and as a text-only LLM's config.json
// (LanguageModelConfig(configJSON:), model_type llama / qwen2). Seeded with the
// config.json files of the test models, Tests/Fixtures/hf and the malformed-config corpus.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(fuzzBytes(data, size))
    _ = try? ModelConfig(bytes: bytes)
    if let json = try? JSONValue.parse(bytes, maxDepth: 64) { _ = try? LanguageModelConfig(configJSON: json) }
    return 0
}
