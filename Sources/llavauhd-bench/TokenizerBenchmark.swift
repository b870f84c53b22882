#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// Tokenizer load and encode speed on the real tokenizer files of the test assets
/// (`LLAVAUHD_TEST_ASSETS`, default `.build-assets`; made by scripts/setup-test-assets.sh).
var tokenizerBenchmark: Benchmark { Benchmark(
    name: "tokenizer",
    summary: "tokenizer load time and encode throughput (SentencePiece, Qwen2 byte-level BPE)"
) { options in
    let assets = getenv("LLAVAUHD_TEST_ASSETS").map { String(cString: $0) } ?? ".build-assets"
    let spm = assets + "/tokenizers/tokenizer.model.v1"
    let qwen = assets + "/tokenizers/qwen2"
    let reps = options.repetitions(5)

    var rows: [String] = []
    var loaded: [(String, any Tokenizer)] = []
    func load(_ label: String, _ make: () throws -> any Tokenizer) throws {
        var tokenizer: (any Tokenizer)?
        let t = try bestOf(reps) { tokenizer = try make() }
        if let tokenizer { loaded.append((label, tokenizer)) }
        rows.append("| load \(label) | \(String(format1: t * 1000)) ms |")
    }
    try load("SentencePiece tokenizer.model (32 k pieces, 0.5 MB)") { try SentencePieceTokenizer(modelFile: spm) }
    try load("Qwen2 tokenizer.json (152 k tokens, 11 MB)") { try ByteLevelBPETokenizer(tokenizerJSON: qwen + "/tokenizer.json") }
    try load("Qwen2 vocab.json + merges.txt (4.7 MB)") {
        try ByteLevelBPETokenizer(vocabJSON: qwen + "/vocab.json", merges: qwen + "/merges.txt", configDirectory: nil)
    }

    // Texts: prose, CJK, and long repeats (BPE must stay O(n log n) per word).
    let prose = String(repeating: "The quick brown fox jumps over the lazy dog. It's 3.14159, isn't it?\n", count: 1500)
    let cjk = String(repeating: "人工智能是计算机科学的一个分支。这张图片里有什么？", count: 1500)
    let letters = String(repeating: "a", count: 100_000)
    let spaces = String(repeating: " ", count: 100_000)
    for (label, tokenizer) in loaded where !label.contains("vocab.json") {
        let name = label.hasPrefix("SentencePiece") ? "SentencePiece" : "Qwen2 BPE"
        for (textLabel, text) in [("English prose", prose), ("Chinese", cjk), ("\"a\" × 100 000", letters), ("\" \" × 100 000", spaces)] {
            var count = 0
            let t = try bestOf(reps) { count = try tokenizer.encode(text, addBOS: false, parseSpecial: true).count }
            let mb = Double(text.utf8.count) / 1e6
            rows.append("| encode \(name), \(textLabel) (\(text.utf8.count / 1000) kB → \(count) ids) | \(String(format1: t * 1000)) ms, \(String(format1: mb / t)) MB/s |")
        }
    }
    return """
    Best of \(reps) runs, release build, one thread.

    | what | time |
    |---|---|
    \(rows.joined(separator: "\n"))
    """
} }

extension String {
    /// A number with one decimal.
    init(format1 v: Double) {
        let tenths = Int((v * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
