#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import Testing
import TestSupport

/// Tied embeddings in GGUF files: a file without `output.weight` (SmolLM2's layout) uses
/// `token_embd.weight` as its output layer, whatever the type of that table, as llama.cpp does.
/// Two files are built from each LLM fixture of Tests/Fixtures/gguf-llm by editing its bytes:
/// *tied* renames `output.weight` in the tensor table (so the file has no output head), and
/// *copied* overwrites the bytes of `output.weight` with those of `token_embd.weight` (same
/// type and dims in these fixtures). The two must give bit-identical logits at every position,
/// and differ from the original file's (whose output head is a different matrix).
@Suite struct TiedEmbeddingTests {
    static let fixtures = ["llama-f32", "llama-q8_0", "qwen2-q4_0", "qwen2-bf16"]

    @Test(arguments: fixtures)
    func missingOutputHeadUsesTheEmbeddingTable(_ name: String) throws {
        let path = Fixtures.root + "/gguf-llm/\(name).gguf"
        let original = try GGUFFile(path: path)
        let head = try #require(original.tensorInfo("output.weight"))
        let embed = try #require(original.tensorInfo("token_embd.weight"))
        try #require(head.type == embed.type && head.dimensions == embed.dimensions)
        let bytes = Array(UnsafeRawBufferPointer(start: original.file.base!, count: original.file.size))

        // The tensor-table entry of output.weight: u64 length 13, then the name.
        let key = GGUFBuilder.str("output.weight")
        let at = try #require((0...(original.dataOffset - key.count)).first { Array(bytes[$0..<($0 + key.count)]) == key })
        var tiedBytes = bytes
        tiedBytes[at + 8 + 5] = UInt8(ascii: "x")   // "outpux.weight": not a name the decoder reads
        var copiedBytes = bytes
        copiedBytes.replaceSubrange(head.fileOffset..<(head.fileOffset + head.byteCount),
                                    with: bytes[embed.fileOffset..<(embed.fileOffset + embed.byteCount)])
        let tiedPath = temporaryFile(tiedBytes), copiedPath = temporaryFile(copiedBytes)
        defer { unlink(tiedPath); unlink(copiedPath) }

        let tiedFile = try GGUFFile(path: tiedPath)
        #expect(tiedFile.tensorInfo("output.weight") == nil)
        let tiedConfig = try LanguageModelConfig(gguf: tiedFile)
        #expect(tiedConfig.tieWordEmbeddings)
        #expect(try !LanguageModelConfig(gguf: original).tieWordEmbeddings)

        let ids = [1, 5, 9, 2, 7, 3]
        func logits(_ file: GGUFFile) throws -> [Float] {
            let d = try TransformerDecoder(gguf: file)
            return try d.eval(tokens: ids, cache: KVCache(config: d.config, capacity: 8), logits: .all,
                              context: ComputeContext(threads: 2))
        }
        let tiedDecoder = try TransformerDecoder(gguf: tiedFile)
        #expect(tiedDecoder.lmHead.formatName == embed.type.name)
        let tied = try logits(tiedFile), copied = try logits(GGUFFile(path: copiedPath)), untied = try logits(original)
        #expect(tied.count == ids.count * tiedConfig.vocabSize)
        #expect(tied.map(\.bitPattern) == copied.map(\.bitPattern), "\(name): tied head differs from an explicit copy of token_embd")
        #expect(tied != untied, "\(name): the edit did not change the output head")
    }
}
