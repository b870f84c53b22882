#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `real`: the real, trained GGUF LLMs of `scripts/fetch-real-models.sh` (every `.gguf` file in
/// `$LLAVAUHD_TEST_ASSETS/real-models`, the assets folder defaulting to `.build-assets`) next to
/// llama.cpp's `llama-bench` on the same files in the same run (`LlamaCpp`: env
/// `LLAVAUHD_LLAMA_CPP`). The tests are llama-bench's: prefill of `promptLengths` random tokens
/// in one call from an empty KV cache (`ppN`), and decode of `decodeTokens` tokens one at a time
/// from an empty cache (`tgN`), on the same threads, with the decoder a text-only model loads
/// from the file (`TransformerDecoder(gguf:)`, as `LlavaModel(path:)` builds it) and a KV cache
/// of the sessions' default type (16 bits, as llama.cpp's default f16 cache). Both sides after a
/// warm-up run, best of N.
var realModelBenchmark: Benchmark {
    Benchmark(name: "real", summary: "real GGUF LLMs (SmolLM2, Qwen2.5-Coder): prefill 512/1024 and decode 64 next to llama-bench",
              run: runRealModelBenchmark)
}

/// Where scripts/fetch-real-models.sh puts the files.
private let realModelsDirectory = (environment("LLAVAUHD_TEST_ASSETS") ?? ".build-assets") + "/real-models"
private let promptLengths = [512, 1024]
private let longestPrompt = promptLengths.reduce(0, max)
private let decodeTokens = 64

/// Tokens/s of one test: ours (best of N) and llama-bench's (its fastest and its mean of N).
private struct Row {
    let test: String
    let ours: Double
    let llama: LlamaCpp.Test?
}

private func runRealModelBenchmark(_ options: BenchOptions) throws -> String {
    let files = try ((try? listDirectory(realModelsDirectory)) ?? []).filter { $0.hasSuffix(".gguf") }
        .map { (path: realModelsDirectory + "/" + $0, gguf: try GGUFFile(path: realModelsDirectory + "/" + $0)) }
        .sorted { $0.gguf.file.size < $1.gguf.file.size }
    guard !files.isEmpty else {   // an error, so that the recorded rows stay in BENCHMARKS.md
        throw LlavaError(.io, "no GGUF file in \(realModelsDirectory); run `bash scripts/fetch-real-models.sh smollm2 qwen05 qwen15`")
    }
    let threads = ComputeContext.defaultThreads
    let reps = options.repetitions(3)
    let llama = LlamaCpp.binaries != nil
    var md = """
        Real trained LLMs in GGUF (scripts/fetch-real-models.sh), each loaded from its file as a text-only model, \(threads) threads \
        (CPU features the kernels use: \(CPUProfile.Features.host.names.joined(separator: ", "))). Tests as `llama-bench` runs them: \
        `ppN` = N random tokens in one call from an empty KV cache, `tg\(decodeTokens)` = \(decodeTokens) tokens one at a time from an \
        empty cache; KV cache \(KVCacheType.sessionDefault) on both sides. Ours: best of \(reps) after a warm-up run. \
        llama.cpp: \(llama ? "\(LlamaCpp.version), `llama-bench -p \(promptLengths.map(String.init).joined(separator: ",")) -n \(decodeTokens) -t \(threads) -r \(reps)` in the same run, its fastest repetition (its mean in brackets)" : "not run (\(LlamaCpp.unavailableReason))"). \
        Ratio = ours / llama.cpp's fastest (> 1: we are faster).

        | model | weights | test | ours tok/s | llama.cpp tok/s | ours / llama.cpp |
        |---|---|---|---|---|---|

        """
    var loads: [String] = []
    for (path, file) in files {
        let decoder = try TransformerDecoder(gguf: file)
        let name = file.string("general.name") ?? fileName(path)
        let formats = decoder.matrixFormats.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map(\.key).joined(separator: "/")
        print("real: \(name) (\(fileName(path)), \(formats))")
        var rows = try measure(decoder, threads: threads, reps: reps)
        if llama, let tests = LlamaCpp.tests(path, prompts: promptLengths, generate: decodeTokens, threads: threads, repetitions: reps) {
            rows = rows.map { row in Row(test: row.test, ours: row.ours, llama: tests.first { $0.name == row.test }) }
        }
        loads.append("\(name) \(loadAverage())")
        let table = rows.map { r in
            let theirs = r.llama.map { "\(fmt($0.best)) (\(fmt($0.mean)))" } ?? "–"
            return "| \(name) | `\(fileName(path))`, \(megabytes(file.file.size)), \(formats) | \(r.test) | \(fmt(r.ours)) | \(theirs) | "
                + "**\(ratio(r.ours, r.llama?.best))** |\n"
        }.joined()
        print(table)
        md += table
    }
    md += "\nLoad average (1 minute) when each model's rows ended: \(loads.joined(separator: ", ")).\n"
    return md
}

/// Our prefill of each of `promptLengths` random tokens and decode of `decodeTokens` tokens
/// (greedy, each fed back), each from an empty cache, best of `reps` after a warm-up of each.
private func measure(_ decoder: TransformerDecoder, threads: Int, reps: Int) throws -> [Row] {
    let config = decoder.config
    let context = ComputeContext(threads: threads)
    let cache = try KVCache(config: config, capacity: longestPrompt + decodeTokens, type: .sessionDefault)
    var random = SplitMix(seed: 11)
    let prompt = (0..<longestPrompt).map { _ in Int(random.next() % UInt64(config.vocabSize)) }
    var rows: [Row] = []
    for n in promptLengths {
        let seconds = try bestOf(reps + 1) {   // the first run warms up; a slower one never counts
            cache.reset()
            _ = try decoder.eval(tokens: Array(prompt[..<n]), cache: cache, context: context)
        }
        rows.append(Row(test: "pp\(n)", ours: Double(n) / seconds, llama: nil))
    }
    let seconds = try bestOf(reps + 1) {
        cache.reset()
        var token = config.bosTokenId ?? prompt[0]
        for _ in 0..<decodeTokens {
            token = TokenSampler.argmax(try decoder.eval(tokens: [token], cache: cache, context: context))
        }
    }
    rows.append(Row(test: "tg\(decodeTokens)", ours: Double(decodeTokens) / seconds, llama: nil))
    return rows
}
