#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `llm`: the language model at the real 7B shapes (Qwen2-7B, Vicuna-7B) on synthetic weights
/// (`SyntheticCheckpoint`, BF16 as the releases store them), in every storage this library runs:
/// BF16 with float32 products and with bf16 prefill products, Q8_0 and Q4_0 written by
/// `ModelQuantizer`, and Q4_K_M made by llama.cpp's llama-quantize from the same weights (when
/// llama.cpp is available; IQ4_XS, Q3_K_M and Q2_K too when `--llm-weights` names them). For each: prefill of a `promptTokens` prompt and greedy decoding of
/// `decodeTokens` tokens after it, best of N; decode set against the memory-bandwidth bound
/// measured around each row (bytes of weights and KV cache read per token / the read bandwidth
/// measured just before and just after that row's timing, the larger: on a shared virtual
/// machine the bandwidth drifts by tens of percent within minutes).
/// By default `defaultLayers` decoder layers are built (a full 7B checkpoint is 13–15 GB); the
/// full-depth figures are extrapolated from the time measured inside the layers (`--layers N`
/// changes the depth). llama.cpp (`llama-bench` on GGUF files of the same weights and depth,
/// `LlamaCpp`) and PyTorch (scripts/bench/bench_torch.py llm) run the same shapes, depth, prompt
/// and threads in the same run when available.
var languageBenchmark: Benchmark {
    Benchmark(name: "llm", summary: "LLM prefill and decode at Qwen2-7B / Vicuna-7B shapes: BF16, Q8_0, Q4_0, Q4_K_M; vs llama.cpp and PyTorch",
              run: runLanguageBenchmark)
}

private let defaultLayers = 2
private let defaultPromptTokens = 1000
private let decodeTokens = 32
/// llama-quantize types measured only when `--llm-weights` names them (formats the default
/// rows do not reach: IQ4_XS, and the K formats below 4 bits).
private let optInGGUFTypes = ["IQ4_XS", "Q3_K_M", "Q2_K"]

private struct Measured {
    let label: String
    let format: String
    let prefill: Double         // tokens/s at the depth run
    let decode: Double          // tokens/s
    let bytesPerToken: Int
    let fullPrefill: Double
    let fullDecode: Double
    let fullBytesPerToken: Int
    /// The read bandwidth measured just before and just after this row (the larger), bytes/s.
    var bandwidth = 0.0
    /// Process CPU seconds (all threads, user + system) and minor page faults of the fastest
    /// prefill, and the page faults of the untimed first one: on a loaded machine CPU time
    /// moves far less than wall time, and the faults show memory a prefill touches fresh.
    var prefillCPU = 0.0, prefillFaults = 0, firstPrefillFaults = 0

    /// The figures above as printed after each row.
    var cpuLine: String {
        "prefill CPU \(fmt(prefillCPU)) s, \(prefillFaults) page faults (first prefill \(firstPrefillFaults))"
    }
}

/// Process CPU seconds (user + system, all threads) and minor page faults so far.
private func processUsage() -> (cpu: Double, faults: Int) {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    let cpu = Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
    return (cpu, Int(u.ru_minflt))
}

private func runLanguageBenchmark(_ options: BenchOptions) throws -> String {
    try BLAS.load()
    let threads = ComputeContext.defaultThreads
    let reps = options.repetitions(3)
    let promptTokens = options.context ?? defaultPromptTokens
    let kv = options.kvCache ?? .sessionDefault
    let probe = ReadBandwidth()
    var bandwidth = probe.measure(threads: threads, repeats: 3)
    print("llm: read bandwidth \(fmt(bandwidth / 1e9)) GB/s (\(threads) threads)")
    let llama = options.compare && LlamaCpp.isAvailable
    let torch = options.compare && PythonRunner.hasModule("torch")
    func wanted(_ format: String) -> Bool { options.llmWeights?.contains(format) ?? true }

    var md = """
        LLM at 7B shapes on synthetic weights (BF16 as the releases store them), \(threads) threads, best of \(reps). \
        Prefill: a \(promptTokens)-token prompt (logits of the last position). Decode: \(decodeTokens) greedy tokens after it. \
        KV cache: \(kv). \
        Decode bound = (weight bytes + KV-cache bytes read per token) / the read bandwidth measured just before and just after \
        that row (\(probe.bytes >> 20) MiB read with 256-bit loads on \(threads) threads, best of 2 each time, the larger of the two). \
        Weights: BF16 safetensors with float32 products (the exact path) and with bf16 prefill products \
        (`MatrixArithmetic.bfloat16`, AVX512_BF16: \(BF16Product.isAvailable ? "yes" : "no")); Q8_0 / Q4_0 written by \
        `ModelQuantizer` (projections and lm_head; embeddings BF16); Q4_K_M (and IQ4_XS, Q3_K_M, Q2_K, when `--llm-weights` names them) = \
        llama.cpp's `llama-quantize` of the same weights, read from the GGUF file. Kernels: \(QuantKernel.preferred(for: .q8_0)) for the quantized formats (decode from row-interleaved \
        copies of the Q8_0 / Q4_0 / Q4_K matrices where the CPU has AVX-512 VNNI; where the default is int8AVX2, from \
        scale-grouped copies of the formats that have one (Q4_0, IQ4_NL, IQ4_XS, Q8_0, Q4_K, Q5_K, Q6_K: `QuantizedMatrix.grouped`) and from \
        huge-page copies of the stored bytes for the others; "stored layout" rows force the same kernels on the file's layout; "f32 kernels" rows \
        force f32AVX2 where the default is int8AVX2, on the file's pages), \(VectorKernels.isa) matrix-vector \
        kernels for BF16.


        """
    var tables = ""
    var llamaRows: [String] = []
    var torchRows: [String] = []
    if let dir = options.llmDirectory {
        // One existing directory, its language model alone.
        let decoder = try LlavaModel(path: dir, options: .init(threads: threads)).language
        let name = dir.split(separator: "/").last.map(String.init) ?? dir
        let formats = decoder.matrixFormats.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        let before = probe.measure(threads: threads, repeats: 2)
        var m = try measure(decoder, label: name, format: formats, fullLayers: decoder.config.layerCount, reps: reps, threads: threads,
                            promptTokens: promptTokens, kv: kv)
        m.bandwidth = max(before, probe.measure(threads: threads, repeats: 2))
        bandwidth = max(bandwidth, m.bandwidth)
        let share = 100 * Double(m.bytesPerToken) / m.bandwidth * m.decode
        print("llm: \(name): prefill \(fmt(m.prefill)) tok/s, decode \(fmt(m.decode, 2)) tok/s (\(fmt(share, 0)) % of the bound at \(fmt(m.bandwidth / 1e9)) GB/s, load \(loadAverage())); \(m.cpuLine)")
        tables += "\n**\(name)** (`--llm-dir`), all \(decoder.config.layerCount) decoder layers; matrices: \(formats):\n\n"
        tables += "| prefill tok/s | decode tok/s | GB read/token | read GB/s | decode vs bound |\n|---|---|---|---|---|\n"
        tables += "| \(fmt(m.prefill)) | \(fmt(m.decode, 2)) | \(fmt(Double(m.bytesPerToken) / 1e9, 2)) | \(fmt(m.bandwidth / 1e9)) | **\(fmt(share, 0)) %** |\n"
    }
    let models: [SyntheticCheckpoint.LanguageModel] = options.llmDirectory == nil ? [.qwen2_7B, .vicuna7B] : []
    for model in models where options.llmModels?.contains(model.rawValue) ?? true {
        let checkpoint = SyntheticCheckpoint(languageModel: model, multimodal: false, layers: options.layers ?? defaultLayers)
        let layers = checkpoint.layerCount, full = model.layers
        let config = checkpoint.languageConfig
        let (dir, _, _) = try checkpoint.ensure(in: SyntheticCheckpoint.benchDirectory())
        print("llm: \(model.displayName), \(layers) of \(full) layers in \(dir)")

        var variants: [(label: String, format: String, make: () throws -> TransformerDecoder)] = [
            ("BF16, float32 products", "BF16", { try TransformerDecoder(config: config, weights: WeightStore(directory: dir)) }),
        ]
        if BF16Product.isAvailable {
            variants.append(("BF16, bf16 prefill", "BF16", {
                try TransformerDecoder(config: config, weights: WeightStore(directory: dir), arithmetic: .bfloat16)
            }))
        }
        variants = variants.filter { wanted($0.format) }
        for format in [QuantFormat.q8_0, .q4_0] where wanted(format.rawValue) {
            let qdir = try quantizedCopy(of: dir, format: format)
            variants.append((format.rawValue, format.rawValue, { try TransformerDecoder(config: config, weights: WeightStore(directory: qdir)) }))
            if QuantKernel.int8VNNI.isAvailable {
                // The same kernels on the stored layout (no row-interleaved copies): the baseline.
                variants.append(("\(format.rawValue), stored layout", format.rawValue, {
                    try TransformerDecoder(config: config, weights: WeightStore(directory: qdir), quantizedKernel: .int8VNNI)
                }))
            } else if QuantKernel.preferred(for: format) == .int8AVX2 || Int8ProductKernel.host == .avx2 {
                // Exact f32 (the f32 matrix-vector kernels for decode, dequantization + sgemm for
                // prefill): the baseline of the AVX2 int8 kernels.
                variants.append(("\(format.rawValue), f32 kernels (dequantize + sgemm prefill)", format.rawValue, {
                    try TransformerDecoder(config: config, weights: WeightStore(directory: qdir), quantizedKernel: .f32AVX2)
                }))
            }
        }
        // GGUF files of the same weights: Q4_K_M for our row, and each wanted format for llama-bench.
        var ggufs: [String: String] = [:]
        let ggufTypes = ["BF16", "Q8_0", "Q4_0", "Q4_K_M"].filter { wanted($0) && (llama || $0 == "Q4_K_M") }
        if LlamaCpp.isAvailable, !ggufTypes.isEmpty, let bf16 = LlamaCpp.bf16GGUF(of: dir) {
            ggufs["BF16"] = bf16
            for type in ggufTypes where type != "BF16" { ggufs[type] = LlamaCpp.quantized(bf16, type: type, threads: threads) }
            if let q4k = ggufs["Q4_K_M"] {
                variants.append(("Q4_K_M (GGUF)", "Q4_K_M", { try TransformerDecoder(config: config, gguf: GGUFFile(path: q4k)) }))
            }
        }
        // IQ4_XS, Q3_K_M and Q2_K only when named (`--llm-weights IQ4_XS,Q3_K_M,Q2_K`): their default
        // kernels, and the exact f32 ones (dequantization + sgemm prefill, the f32 matrix-vector
        // kernels) as their baseline.
        for type in optInGGUFTypes where options.llmWeights?.contains(type) == true {
            guard LlamaCpp.isAvailable, let bf16 = LlamaCpp.bf16GGUF(of: dir),
                  let path = LlamaCpp.quantized(bf16, type: type, threads: threads) else { continue }
            variants.append(("\(type) (GGUF)", type, { try TransformerDecoder(config: config, gguf: GGUFFile(path: path)) }))
            let f32: QuantKernel = QuantKernel.f32AVX512.isAvailable ? .f32AVX512 : .f32AVX2
            variants.append(("\(type) (GGUF), f32 kernels", type, {
                try TransformerDecoder(config: config, gguf: GGUFFile(path: path), quantizedKernel: f32)
            }))
        }

        var results: [Measured] = []
        for v in variants {
            let decoder = try v.make()
            let before = probe.measure(threads: threads, repeats: 2)
            var m = try measure(decoder, label: v.label, format: v.format, fullLayers: full, reps: reps, threads: threads,
                                promptTokens: promptTokens, kv: kv)
            m.bandwidth = max(before, probe.measure(threads: threads, repeats: 2))
            bandwidth = max(bandwidth, m.bandwidth)
            results.append(m)
            print("llm: \(model.displayName) \(v.label): prefill \(fmt(m.prefill)) tok/s, decode \(fmt(m.decode, 2)) tok/s "
                  + "(\(fmt(100 * Double(m.bytesPerToken) / m.bandwidth * m.decode, 0)) % of the bound at \(fmt(m.bandwidth / 1e9)) GB/s); \(m.cpuLine)")
        }
        let fp32Prefill = results.first?.prefill
        tables += "\n**\(model.displayName)**, \(layers) of \(full) decoder layers run (+ embeddings and lm_head):\n\n"
        tables += "| weights | prefill tok/s | vs float32 prefill | decode tok/s | GB read/token | read GB/s | decode vs bound | full depth: prefill tok/s | full depth: decode tok/s | full depth: vs bound |\n"
        tables += "|---|---|---|---|---|---|---|---|---|---|\n"
        for m in results {
            tables += "| \(m.label) | \(fmt(m.prefill)) | \(ratio(m.prefill, fp32Prefill)) | \(fmt(m.decode, 2)) | "
                + "\(fmt(Double(m.bytesPerToken) / 1e9, 2)) | \(fmt(m.bandwidth / 1e9)) | **\(fmt(100 * Double(m.bytesPerToken) / m.bandwidth * m.decode, 0)) %** | "
                + "\(fmt(m.fullPrefill)) | \(fmt(m.fullDecode, 2)) | \(fmt(100 * Double(m.fullBytesPerToken) / m.bandwidth * m.fullDecode, 0)) % |\n"
        }

        if llama {
            for (format, label) in [("BF16", "BF16, float32 products"), ("Q8_0", "Q8_0"), ("Q4_0", "Q4_0"), ("Q4_K_M", "Q4_K_M (GGUF)")] where wanted(format) {
                guard let path = ggufs[format] else { llamaRows.append("| \(model.displayName) | \(format) | failed | | | |"); continue }
                print("llm: llama-bench \(model.displayName) \(format)")
                guard let r = LlamaCpp.bench(path, prompt: promptTokens, generate: decodeTokens, threads: threads, repetitions: reps) else {
                    llamaRows.append("| \(model.displayName) | \(format) | llama-bench failed | | | |")
                    continue
                }
                let ours = results.filter { $0.format == format }
                let bestPrefill = ours.map(\.prefill).max(), bestDecode = ours.first { $0.label == label }?.decode ?? ours.map(\.decode).max()
                llamaRows.append("| \(model.displayName) | \(format) | \(fmt(r.prefill)) | \(fmt(r.decode, 2)) | "
                                 + "\(ratio(bestPrefill, r.prefill)) | \(ratio(bestDecode, r.decode)) |")
            }
        }
        if torch {
            for compute in ["fp32", "bf16"] {
                print("llm: PyTorch \(model.displayName) \(compute)")
                let json = PythonRunner.json("scripts/bench/bench_torch.py", [
                    "llm", "--arch", model.architectureName, "--layers", String(layers), "--prompt", String(promptTokens),
                    "--decode", String(decodeTokens), "--threads", String(threads), "--repeat", String(reps), "--compute", compute])
                if let error = json?["error"]?.stringValue {
                    torchRows.append("| \(model.displayName) | \(compute) | \(error) | | | |")
                    continue
                }
                guard let json, let prefill = json["prefill_tokens_per_s"]?.doubleValue, let decode = json["decode_tokens_per_s"]?.doubleValue else {
                    torchRows.append("| \(model.displayName) | \(compute) | failed | | | |")
                    continue
                }
                let oursPrefill = compute == "fp32" ? results.first?.prefill : results.map(\.prefill).max()
                let oursDecode = compute == "fp32" ? results.first?.decode : results.first { $0.format == "BF16" }?.decode
                torchRows.append("| \(model.displayName) | \(compute) | \(fmt(prefill)) | \(fmt(decode, 2)) | "
                                 + "\(ratio(oursPrefill, prefill)) | \(ratio(oursDecode, decode)) |")
            }
        }
    }
    md += "Read bandwidth: \(fmt(bandwidth / 1e9)) GB/s at best in this run (\(threads) threads); each row is set against its own measurement.\n" + tables
    md += """

        Full-depth columns are extrapolated: measured time + (time inside the decoder layers, from the per-layer abort \
        polls) × (full − run) / run; bytes per token likewise.

        """
    if llama {
        md += """

            llama.cpp (\(LlamaCpp.version)), `llama-bench -p \(promptTokens) -n \(decodeTokens) -t \(threads)` on GGUF files of the \
            same weights and depth (BF16 written by scripts/bench/bench_gguf_convert.py, the rest by `llama-quantize`; its Q4_0 file keeps \
            `output.weight` in Q6_K). Ratio = ours / llama.cpp (> 1: we are faster); ours = the best prefill of that storage and \
            the decode of the matching row.

            | model | weights | llama.cpp prefill tok/s | llama.cpp decode tok/s | prefill ratio | decode ratio |
            |---|---|---|---|---|---|
            \(llamaRows.joined(separator: "\n"))

            """
    } else {
        md += "\nllama.cpp: not run (\(LlamaCpp.unavailableReason)).\n"
    }
    if torch {
        md += """

            PyTorch (`scripts/bench/bench_torch.py llm`, transformers with random weights, same shapes, depth, prompt and threads, \
            SDPA attention). Ratio = ours / PyTorch: fp32 against our float32-product BF16 row, bf16 against our best BF16 prefill \
            and BF16 decode.

            | model | compute | PyTorch prefill tok/s | PyTorch decode tok/s | prefill ratio | decode ratio |
            |---|---|---|---|---|---|
            \(torchRows.joined(separator: "\n"))

            """
    } else {
        md += "\nPyTorch: not run (`import torch` failed for `\(PythonRunner.python)`; set LLAVAUHD_BENCH_PYTHON).\n"
    }
    return md
}

/// `directory` quantized by `ModelQuantizer` (projections and lm_head) into `directory-<format>`
/// (written once).
func quantizedCopy(of directory: String, format: QuantFormat) throws -> String {
    let out = directory + "-" + format.lowercaseName
    let marker = out + "/.complete"
    if fileExists(marker) { return out }
    if directoryExists(out) { _ = system("rm -rf " + shellQuoted(out)) }
    print("llm: quantizing to \(format.rawValue) into \(out)")
    try ModelQuantizer.quantize(model: directory, to: out, options: .init(format: format, includeLMHead: true))
    guard let f = fopen(marker, "w") else { throw LlavaError(.io, "cannot write \(marker)") }
    fclose(f)
    return out
}

/// Prefill and decode speed of one decoder, with the full-depth extrapolation.
private func measure(_ decoder: TransformerDecoder, label: String, format: String, fullLayers full: Int,
                     reps: Int, threads: Int, promptTokens: Int, kv: KVCacheType) throws -> Measured {
    let config = decoder.config, layers = config.layerCount
    let clock = LayerClock()
    let context = ComputeContext(threads: threads, shouldAbort: clock.poll)
    var random = SplitMix(seed: 7)
    let prompt = (0..<promptTokens).map { _ in Int(random.next() % UInt64(config.vocabSize)) }
    let cache = try KVCache(config: config, capacity: promptTokens + decodeTokens + 1, type: kv)
    // Untimed: pages the weights and the cache in, and leaves the decoder's prefill workspace
    // (`TransformerDecoder` keeps it) at the size the timed prefills use, so their first layer
    // does not fault fresh pages in, which the full-depth extrapolation (from the time inside
    // the layers, i.e. layer 0 alone at 2 layers) would multiply.
    let u0 = processUsage()
    _ = try decoder.eval(tokens: prompt, cache: cache, context: context)
    let firstFaults = processUsage().faults - u0.faults

    var prefill = (seconds: Double.infinity, layers: 0.0, cpu: 0.0, faults: 0)
    var last: [Float] = []
    for _ in 0..<reps {
        cache.reset()
        clock.reset()
        let u = processUsage(), t0 = monotonicSeconds()
        last = try decoder.eval(tokens: prompt, cache: cache, context: context)
        let t = monotonicSeconds() - t0, u1 = processUsage()
        if t < prefill.seconds { prefill = (t, clock.timeInsideLayers(), u1.cpu - u.cpu, u1.faults - u.faults) }
    }
    var decode = (seconds: Double.infinity, layers: 0.0)
    for _ in 0..<reps {
        try cache.truncate(to: promptTokens)
        var token = TokenSampler.argmax(last)
        var inLayers = 0.0
        let t0 = monotonicSeconds()
        for _ in 0..<decodeTokens {
            clock.reset()
            let logits = try decoder.eval(tokens: [token], cache: cache, context: context)
            inLayers += clock.timeInsideLayers()
            token = TokenSampler.argmax(logits)
        }
        let t = monotonicSeconds() - t0
        if t < decode.seconds { decode = (t, inLayers) }
    }
    let scale = Double(full - layers) / Double(layers)
    let kvPerLayer = 2 * (promptTokens + decodeTokens / 2) * config.kvHeadCount * config.headDim * kv.bytesPerValue
    let layerBytes = decoder.weightBytesPerToken - decoder.lmHead.byteCount
    return Measured(
        label: label, format: format,
        prefill: Double(promptTokens) / prefill.seconds,
        decode: Double(decodeTokens) / decode.seconds,
        bytesPerToken: decoder.weightBytesPerToken + layers * kvPerLayer,
        fullPrefill: Double(promptTokens) / (prefill.seconds + prefill.layers * scale),
        fullDecode: Double(decodeTokens) / (decode.seconds + decode.layers * scale),
        fullBytesPerToken: decoder.lmHead.byteCount + (layerBytes + layers * kvPerLayer) * full / layers,
        prefillCPU: prefill.cpu, prefillFaults: prefill.faults, firstPrefillFaults: firstFaults)
}

/// Times the decoder layers through the abort callback, which `eval` polls before each layer.
private final class LayerClock: @unchecked Sendable {
    private var first = 0.0, last = 0.0, polls = 0

    func reset() { polls = 0 }

    func poll() -> Bool {
        let t = monotonicSeconds()
        if polls == 0 { first = t }
        last = t
        polls += 1
        return false
    }

    /// Seconds spent in all layers of the last call: the span between the first and the last
    /// poll covers polls − 1 layer runs; scaled to all `polls` of them.
    func timeInsideLayers() -> Double {
        guard polls > 1 else { return 0 }
        return (last - first) * Double(polls) / Double(polls - 1)
    }
}
