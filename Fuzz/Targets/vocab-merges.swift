// libFuzzer target `vocab-merges`: a Qwen2-style vocab.json + merges.txt pair, loaded as a model
// directory's tokenizer is (ByteLevelBPETokenizer(vocabJSON:merges:configDirectory:)), then used
// once. One input holds both files: vocab.json, the line "#~merges.txt~#", then merges.txt.
// Seeded with cut-down Qwen2 vocabularies made from the test assets by scripts/fuzz.sh.
@testable import LlavaUHD

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVocabMerges(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let (vocab, merges) = fuzzSplit(fuzzBytes(data, size), separator: "\n#~merges.txt~#\n")
    let vocabPath = FuzzScratch.directory + "/vocab.json", mergesPath = FuzzScratch.directory + "/merges.txt"
    FuzzScratch.write(vocab, to: vocabPath)
    FuzzScratch.write(merges, to: mergesPath)
    if let tokenizer = try? ByteLevelBPETokenizer(vocabJSON: vocabPath, merges: mergesPath, configDirectory: nil) {
        exercise(tokenizer)
    }
    return 0
}
