#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// llama.cpp as a comparison point, when it is built on the machine (never part of this
/// repository): env `LLAVAUHD_LLAMA_CPP` names its build's binary directory (holding
/// `llama-bench`, and `llama-quantize` for the synthetic-weights comparisons; with shared
/// libraries, LD_LIBRARY_PATH must find them), e.g. the `build/bin` of the `vendor/llama.cpp` of
/// the PyPI `llama-cpp-python` source distribution. GGUF files are written from the synthetic
/// safetensors weights by scripts/bench/bench_gguf_convert.py (BF16, needs the `gguf` package in the
/// benchmark Python) and quantized by llama.cpp's own `llama-quantize`.
enum LlamaCpp {
    /// The binary directory, nil when unset or without `llama-bench` (what timing a GGUF file
    /// needs; the synthetic-weights comparisons also need `llama-quantize`, `isAvailable`).
    static var binaries: String? {
        guard let dir = environment("LLAVAUHD_LLAMA_CPP") else { return nil }
        let d = dir.hasSuffix("/llama-bench") ? String(dir.dropLast("/llama-bench".count)) : dir
        return fileExists(d + "/llama-bench") ? d : nil
    }

    /// Why llama.cpp figures are missing, for the report.
    static var unavailableReason: String {
        if environment("LLAVAUHD_LLAMA_CPP") == nil { return "LLAVAUHD_LLAMA_CPP is not set" }
        guard let bin = binaries else { return "LLAVAUHD_LLAMA_CPP has no llama-bench" }
        if !fileExists(bin + "/llama-quantize") { return "LLAVAUHD_LLAMA_CPP has no llama-quantize" }
        return "the benchmark Python (\(PythonRunner.python)) cannot import gguf"
    }

    /// Whether GGUF files of synthetic weights can be written and quantized and then timed:
    /// `llama-bench`, `llama-quantize` and the `gguf` package of the benchmark Python.
    static var isAvailable: Bool {
        guard let bin = binaries else { return false }
        return fileExists(bin + "/llama-quantize") && PythonRunner.hasModule("gguf")
    }

    /// The BF16 GGUF of a safetensors LLM directory (its LLM tensors only), written once at
    /// `path` (default: model-bf16.gguf inside the directory; a multimodal directory needs it
    /// outside, or it would load its LLM from that file). The name must end in -bf16.gguf.
    static func bf16GGUF(of directory: String, at path: String? = nil) -> String? {
        let path = path ?? directory + "/model-bf16.gguf"
        if fileExists(path) { return path }
        print("llama.cpp: converting \(directory) to BF16 GGUF")
        return PythonRunner.json("scripts/bench/bench_gguf_convert.py", [directory, path]) != nil && fileExists(path) ? path : nil
    }

    /// Where the benchmarks keep the GGUF of a checkpoint directory's LLM in llama-quantize's
    /// `type` ("BF16", "Q4_K_M"): next to the directory (`dir-llm-q4_k_m.gguf`), outside it.
    static func quantizedLLMPath(of directory: String, type: String) -> String {
        directory + "-llm-" + type.lowercased() + ".gguf"
    }

    /// The e2e benchmark's model directory for a checkpoint directory whose LLM comes from its
    /// `type` GGUF (`dir-q4_k_m-gguf`: links to the checkpoint's files and the GGUF).
    static func ggufModelDirectory(of directory: String, type: String) -> String {
        directory + "-" + type.lowercased() + "-gguf"
    }

    /// The `type` GGUF of a checkpoint directory's LLM when one is already there: the e2e
    /// benchmark's complete GGUF model directory's `llm.gguf`, else `quantizedLLMPath`; nil when
    /// neither exists (nothing is converted or quantized).
    static func existingQuantizedLLM(of directory: String, type: String) -> String? {
        let linked = ggufModelDirectory(of: directory, type: type)
        if fileExists(linked + "/.complete"), fileExists(linked + "/llm.gguf") { return linked + "/llm.gguf" }
        let path = quantizedLLMPath(of: directory, type: type)
        return fileExists(path) ? path : nil
    }

    /// `source` quantized by llama-quantize to `type` ("Q8_0", "Q4_0", "Q4_K_M"; written once).
    static func quantized(_ source: String, type: String, threads: Int) -> String? {
        guard let bin = binaries else { return nil }
        let path = String(source.dropLast("-bf16.gguf".count)) + "-\(type.lowercased()).gguf"
        if fileExists(path) { return path }
        print("llama.cpp: llama-quantize \(type)")
        let command = [bin + "/llama-quantize", source, path + ".part", type, String(threads)].map(shellQuoted).joined(separator: " ")
        guard runCommand(command + " >/dev/null 2>&1") != nil, rename(path + ".part", path) == 0 else { return nil }
        return path
    }

    /// llama-bench's prompt-processing and generation speeds (tokens/s, mean of its repetitions)
    /// for a prompt of `prompt` tokens and `generate` generated tokens on `threads` threads.
    static func bench(_ gguf: String, prompt: Int, generate: Int, threads: Int, repetitions: Int) -> (prefill: Double, decode: Double)? {
        guard let tests = tests(gguf, prompts: [prompt], generate: generate, threads: threads, repetitions: repetitions),
              let prefill = tests.first(where: { $0.prompt > 0 }), let decode = tests.first(where: { $0.generated > 0 }) else { return nil }
        return (prefill.mean, decode.mean)
    }

    /// One llama-bench test: `prompt` tokens processed in one go (`ppN`) or `generated` tokens
    /// decoded one at a time from an empty context (`tgN`); tokens/s as the mean of its
    /// repetitions and as the fastest one.
    struct Test {
        let prompt: Int
        let generated: Int
        let mean: Double
        let best: Double

        /// llama-bench's name of the test ("pp512", "tg64").
        var name: String { prompt > 0 ? "pp\(prompt)" : "tg\(generated)" }
    }

    /// llama-bench's tests of every length in `prompts` and of `generate` generated tokens, in one
    /// process (after its warm-up run), on `threads` threads; nil when it fails.
    static func tests(_ gguf: String, prompts: [Int], generate: Int, threads: Int, repetitions: Int) -> [Test]? {
        guard let bin = binaries else { return nil }
        let command = [bin + "/llama-bench", "-m", gguf, "-p", prompts.map(String.init).joined(separator: ","), "-n", String(generate),
                       "-t", String(threads), "-r", String(repetitions), "-o", "json"].map(shellQuoted).joined(separator: " ") + " 2>/dev/null"
        guard let output = runCommand(command), let json = try? JSONValue.parse(Array(output.utf8)),
              let runs = json.arrayValue else { return nil }
        let tests = runs.compactMap { r -> Test? in
            guard let mean = r["avg_ts"]?.doubleValue else { return nil }
            let samples = r["samples_ts"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            return Test(prompt: r["n_prompt"]?.intValue ?? 0, generated: r["n_gen"]?.intValue ?? 0,
                        mean: mean, best: samples.max() ?? mean)
        }
        return tests.isEmpty ? nil : tests
    }

    /// llama.cpp's build description (commit), for the report.
    static var version: String {
        guard let bin = binaries, let out = runCommand(shellQuoted(bin + "/llama-bench") + " --version 2>&1") else { return "?" }
        return out.split(separator: "\n").first.map(String.init) ?? "?"
    }
}
