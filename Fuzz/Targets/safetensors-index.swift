// libFuzzer target `safetensors-index`: model.safetensors.index.json, loaded as the model loader
// does (WeightStore(directory:) on a folder holding the fuzzed index and the two shards of
// Tests/Fixtures/safetensors/sharded): the index's own validation, the shard-name rules, and
// the tensor-to-shard cross-checks. Seeded with that fixture's index.
@testable import LlavaUHD

private let folder: String = {
    let folder = FuzzScratch.folder("sharded")
    let fixtures = fuzzFixture("LLAVAUHD_FUZZ_SHARDS")
    for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        FuzzScratch.copy(fixtures + "/" + shard, to: folder + "/" + shard)
    }
    return folder
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitSafetensorsIndex(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    fuzzInitialize { _ = folder }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensorsIndex(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = folder + "/" + WeightStore.indexFileName
    FuzzScratch.write(fuzzBytes(data, size), to: path)
    _ = try? SafetensorsIndex(path: path)
    _ = try? WeightStore(directory: folder)
    return 0
}
