#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import Testing
import TestSupport

/// A real llama.cpp GGUF file, when one is on the machine (not in CI): `LLAVAUHD_REAL_GGUF`, or
/// `$LLAVAUHD_TEST_ASSETS/gguf/model.gguf` as assembled by scripts/dev/fetch_gguf_model.sh — DeepSeek-R1-Distill-Qwen-7B
/// Q4_K_M (Qwen2 architecture). Only 2 of the file's 48 published parts exist, so the assembled
/// file is the real header, tensor table and first 199 MB, zero-filled to its full size: this
/// checks that the reader, the hyper-parameters, the tensor mapping of every layer (Q4_K and
/// Q6_K matrices, F32 norms and biases) and the tokenizer accept a real 7B file without copying
/// its weights, and that the tokenizer matches the Qwen2 golden set where the two vocabularies
/// agree (the distilled model has its own added tokens — `<｜User｜>`, `<think>`, ... — and
/// lacks Qwen2's `<|im_start|>` family, so cases containing either are skipped).
@Suite struct RealGGUFTests {
    static let path: String = getenv("LLAVAUHD_REAL_GGUF").map { String(cString: $0) } ?? Fixtures.assets + "/gguf/model.gguf"

    @Test(.enabled(if: fileExists(RealGGUFTests.path)))
    func qwen2SevenBHeaderTensorsAndTokenizer() throws {
        let rss0 = residentMegabytes()
        let gguf = try GGUFFile(path: Self.path)
        let decoder = try TransformerDecoder(gguf: gguf)
        let c = decoder.config
        #expect(c.architecture == .qwen2 && c.hiddenSize == 3584 && c.intermediateSize == 18944 && c.layerCount == 28)
        #expect(c.headCount == 28 && c.kvHeadCount == 4 && c.vocabSize == 152064 && !c.tieWordEmbeddings)
        #expect(abs(c.rmsNormEps - 1e-6) < 1e-12 && c.ropeTheta == 10000)
        let formats = decoder.matrixFormats
        #expect(formats.values.reduce(0, +) == 1 + 7 * 28)
        #expect(Set(formats.keys).isSubset(of: ["Q4_K", "Q6_K"]))
        #expect(decoder.embedTokens.formatName == "Q4_K" && decoder.lmHead.formatName == "Q6_K")
        let tokenizer = try Tokenizers.load(gguf: gguf)
        let rss1 = residentMegabytes()
        // The 4.7 GB of weights stay in the mapping: loading costs the metadata arrays only.
        #expect(rss1 - rss0 < 400)
        #expect(tokenizer.bosTokenId == 151646 && tokenizer.eosTokenId == 151643 && tokenizer.addsBOSByDefault)

        let root = try Fixtures.json(Fixtures.root + "/tokenizer/tok_golden_qwen2_bpe.json")
        let cases = try #require(root["cases"]?.arrayValue)
        let tokens = gguf.strings("tokenizer.ggml.tokens") ?? [], types = gguf.ints("tokenizer.ggml.token_type") ?? []
        let added = zip(tokens, types).filter { $0.1 == 3 || $0.1 == 4 }.map(\.0) + ["<|"]
        var compared = 0, mismatches = 0
        for c in cases {
            guard let text = c["text"]?.stringValue, !added.contains(where: { text.contains($0) }) else { continue }
            let expected = (c["ids"]?.arrayValue ?? []).compactMap { $0.intValue.map(Int32.init) }
            compared += 1
            let ids = try tokenizer.encode(text, addBOS: false, parseSpecial: true)
            if ids != expected { mismatches += 1; Issue.record("ids differ for \(text.debugDescription): \(ids) vs \(expected)") }
        }
        print("real GGUF \(Self.path): \(gguf.tensors.count) tensors, formats \(formats), \(decoder.weightBytesPerToken / 1_000_000) MB "
              + "read per token; RSS +\(rss1 - rss0) MB after load; tokenizer: \(compared) golden cases compared, \(mismatches) mismatches")
        #expect(compared > 200 && mismatches == 0)
    }

    func residentMegabytes() -> Int {
        guard let f = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(f) }
        var size = 0, resident = 0
        _ = withUnsafeMutablePointer(to: &size) { s in
            withUnsafeMutablePointer(to: &resident) { r in withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) } }
        }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE))) >> 20
    }
}
