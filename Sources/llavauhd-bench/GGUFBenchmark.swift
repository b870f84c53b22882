#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `gguf`: real llama.cpp GGUF files as LLMs, when some are on the machine: env `LLAVAUHD_GGUF`
/// (a colon-separated list; default `realGGUFDefault`). For each: open time and resident memory (the weights stay in
/// the mapping), hyper-parameters and storage formats as the decoder reads them, the tokenizer
/// from the metadata, then a short question answered greedily (the prompt in the model's chat
/// format: DeepSeek-R1's `<｜User｜>…<｜Assistant｜>`, Qwen2's ChatML or LLaMA-2's `[INST]`),
/// with prefill and decode speeds. A file whose sidecar `PATH.realbytes` says it is only partly
/// real (the fetch script's `--allow-partial`) is loaded and mapped but not run: its zero-filled
/// weights can neither answer nor be timed honestly. scripts/dev/check_real_gguf.sh runs this.
var ggufBenchmark: Benchmark {
    Benchmark(name: "gguf", summary: "real GGUF LLM files: load, tokenizer, a greedy answer and its speed", run: runGGUFBenchmark)
}

/// Where `scripts/dev/fetch_gguf_model.sh "$LLAVAUHD_TEST_ASSETS/gguf"` assembles a real GGUF
/// file: the default of `LLAVAUHD_GGUF` (the test assets folder defaults to `.build-assets`).
let realGGUFDefault = (environment("LLAVAUHD_TEST_ASSETS") ?? ".build-assets") + "/gguf/model.gguf"

/// A file's name without its folder, for the report (no machine's paths in BENCHMARKS.md).
func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

private let question = "What is the capital of France? Answer in one sentence."
private let answerTokens = 48

private func runGGUFBenchmark(_ options: BenchOptions) throws -> String {
    let env = environment("LLAVAUHD_GGUF") ?? realGGUFDefault
    let paths = env.split(separator: ":").map(String.init).filter(fileExists)
    guard !paths.isEmpty else { return "No GGUF file found (LLAVAUHD_GGUF=\(env)); run scripts/dev/check_real_gguf.sh with one.\n" }
    let threads = ComputeContext.defaultThreads
    var md = ""
    for path in paths {
        let rss0 = residentBytes()
        let t0 = monotonicSeconds()
        let file = try GGUFFile(path: path)
        let decoder = try TransformerDecoder(gguf: file)
        let tokenizer = try Tokenizers.load(gguf: file)
        let loadSeconds = monotonicSeconds() - t0
        let rss1 = residentBytes()
        let c = decoder.config
        let realBytes = (try? readWholeFile(path + ".realbytes")).flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters()) }
            ?? file.file.size
        md += "- `\(fileName(path))` (\(megabytes(file.file.size)), `\(file.string("general.name") ?? file.architecture ?? "?")`): "
        md += "\(c.architecture.rawValue), hidden \(c.hiddenSize), \(c.layerCount) layers, \(c.headCount)/\(c.kvHeadCount) heads, "
        md += "MLP \(c.intermediateSize), vocabulary \(c.vocabSize); matrices \(decoder.matrixFormats.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")), "
        md += "embeddings \(decoder.embedTokens.formatName); \(megabytes(decoder.weightBytesPerToken)) read per token. "
        md += "Decoder + tokenizer (\(tokenizer.vocabularySize) tokens) loaded in \(milliseconds(loadSeconds)), resident memory +\(megabytes(rss1 - rss0)).\n"
        guard realBytes >= file.file.size else {
            md += "  - Only the first \(megabytes(realBytes)) of the file are real (the other published parts do not exist): "
            md += "the header, the tensor table, every layer's mapping and the tokenizer load; no answer or speed can be measured.\n"
            continue
        }
        let prompt = chatPrompt(question, tokenizer: tokenizer)
        let ids = try tokenizer.encode(prompt, addBOS: tokenizer.addsBOSByDefault, parseSpecial: true).map(Int.init)
        let context = ComputeContext(threads: threads)
        let cache = try KVCache(config: c, capacity: ids.count + answerTokens + 1)
        let tp = monotonicSeconds()
        var logits = try decoder.eval(tokens: ids, cache: cache, context: context)
        let prefillSeconds = monotonicSeconds() - tp
        var answer: [Int32] = []
        let td = monotonicSeconds()
        for _ in 0..<answerTokens {
            let t = TokenSampler.argmax(logits)
            if c.eosTokenIds.contains(t) { break }
            answer.append(Int32(t))
            logits = try decoder.eval(tokens: [t], cache: cache, context: context)
        }
        let decodeSeconds = monotonicSeconds() - td
        let text = try tokenizer.decode(answer)
        md += "  - Prompt (\(ids.count) tokens): `\(escapedForTable(prompt))`\n"
        md += "  - Greedy answer (\(answer.count) tokens): \(escapedForTable(text))\n"
        md += "  - Prefill \(fmt(Double(ids.count) / prefillSeconds)) tokens/s, decode \(fmt(Double(answer.count) / decodeSeconds, 2)) tokens/s "
        md += "(\(threads) threads, \(QuantKernel.preferred(for: .q4_K)) kernels).\n"
        print(md)
    }
    return md
}

/// The question in the chat format the vocabulary suggests.
private func chatPrompt(_ q: String, tokenizer: any Tokenizer) -> String {
    if tokenizer.id(forToken: "<｜User｜>") != nil { return "<｜User｜>\(q)<｜Assistant｜>" }
    if tokenizer.id(forToken: "<|im_start|>") != nil {
        return "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\(q)<|im_end|>\n<|im_start|>assistant\n"
    }
    return "[INST] \(q) [/INST]"
}

private func escapedForTable(_ s: String) -> String {
    String(s.unicodeScalars.map { $0 == "\n" ? "⏎" : Character($0) })
}
