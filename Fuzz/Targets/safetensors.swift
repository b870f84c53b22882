// libFuzzer target `safetensors`: a .safetensors file (8-byte header length, JSON header, data
// section), loaded as the model loader does (WeightStore over one file: SafetensorsFile's
// validation, then the by-name table), then every tensor read back as Float32 where its dtype
// allows. Seeded with Tests/Fixtures/safetensors and the malformed-weights corpus.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = FuzzScratch.directory + "/model.safetensors"
    FuzzScratch.write(fuzzBytes(data, size), to: path)
    guard let file = try? SafetensorsFile(path: path) else { return 0 }
    for view in file.tensors { _ = view.floats() }
    _ = try? WeightStore(paths: [path])
    return 0
}
