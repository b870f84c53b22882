#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// llama.cpp as a comparison point, when it is built on the machine (never part of this
/// repository): env `LLAVAUHD_LLAMA_CPP` names its build's binary directory (holding
/// `llama-bench` and `llama-quantize`), e.g. the `build/bin` of the `vendor/llama.cpp` of the
/// PyPI `llama-cpp-python` source distribution. GGUF files are written from the synthetic
/// safetensors weights by scripts/bench/bench_gguf_convert.py (BF16, needs the `gguf` package in the
/// benchmark Python) and quantized by llama.cpp's own `llama-quantize`.
enum LlamaCpp {
    /// The binary directory, nil when unset or incomplete.
    static var binaries: String? {
        guard let dir = environment("LLAVAUHD_LLAMA_CPP") else { return nil }
        let d = dir.hasSuffix("/llama-bench") ? String(dir.dropLast("/llama-bench".count)) : dir
        return fileExists(d + "/llama-bench") && fileExists(d + "/llama-quantize") ? d : nil
    }

    /// Why llama.cpp figures are missing, for the report.
    static var unavailableReason: String {
        if environment("LLAVAUHD_LLAMA_CPP") == nil { return "LLAVAUHD_LLAMA_CPP is not set" }
        if binaries == nil { return "LLAVAUHD_LLAMA_CPP has no llama-bench and llama-quantize" }
        return "the benchmark Python (\(PythonRunner.python)) cannot import gguf"
    }

    static var isAvailable: Bool { binaries != nil && PythonRunner.hasModule("gguf") }

    /// The BF16 GGUF of a safetensors LLM directory (written once, next to it).
    static func bf16GGUF(of directory: String) -> String? {
        let path = directory + "/model-bf16.gguf"
        if fileExists(path) { return path }
        print("llama.cpp: converting \(directory) to BF16 GGUF")
        return PythonRunner.json("scripts/bench/bench_gguf_convert.py", [directory, path]) != nil && fileExists(path) ? path : nil
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
        guard let bin = binaries else { return nil }
        let command = [bin + "/llama-bench", "-m", gguf, "-p", String(prompt), "-n", String(generate), "-t", String(threads),
                       "-r", String(repetitions), "-o", "json"].map(shellQuoted).joined(separator: " ") + " 2>/dev/null"
        guard let output = runCommand(command), let json = try? JSONValue.parse(Array(output.utf8)),
              let runs = json.arrayValue else { return nil }
        var prefill: Double?, decode: Double?
        for r in runs {
            let ts = r["avg_ts"]?.doubleValue
            if (r["n_prompt"]?.intValue ?? 0) > 0 { prefill = ts } else if (r["n_gen"]?.intValue ?? 0) > 0 { decode = ts }
        }
        guard let prefill, let decode else { return nil }
        return (prefill, decode)
    }

    /// llama.cpp's build description (commit), for the report.
    static var version: String {
        guard let bin = binaries, let out = runCommand(shellQuoted(bin + "/llama-bench") + " --version 2>&1") else { return "?" }
        return out.split(separator: "\n").first.map(String.init) ?? "?"
    }
}
