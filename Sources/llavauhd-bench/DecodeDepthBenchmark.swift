#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `decode-depth`: one session decoding at full depth (every decoder layer of Vicuna-7B) at long
/// contexts, where issue 11 wants decode at 85 % of the read-bandwidth bound, with the time of a
/// token split into its steps (`ComputeContext.stageClock`: the products, attention, norms,
/// rotary embedding and cache stores, residual adds, lm_head) and each step's bytes per second.
///
/// Reads the existing full-size synthetic checkpoint (`SyntheticCheckpoint`, the multimodal one
/// `e2e` writes, or the LLM-only one), its `ModelQuantizer` copies (`-q8_0`, `-q4_0`) in the
/// bench directory and llama.cpp's Q4_K_M GGUF of its LLM (`LlamaCpp.existingQuantizedLLM`), read
/// only: nothing is written (a missing directory or file is reported, not made).
/// The KV cache (`--kv`, default the sessions' 16-bit cache) holds made-up keys and values for
/// the context's positions (pseudo-random, no prefill: attention reads the same bytes whatever
/// they are); then `tokens` greedy steps are timed one by one after two untimed ones. GB/s =
/// (weights + the KV rows of the positions attended) / time per token; the bound is the read
/// bandwidth (`ReadBandwidth`, best of 1/4/8 streams per thread) measured just before and just
/// after the steps, the larger.
var decodeDepthBenchmark: Benchmark {
    Benchmark(name: "decode-depth", summary: "full-depth one-session decode at 1000 / 2500 positions, time split by step, vs read bandwidth",
              run: runDecodeDepthBenchmark)
}

private func runDecodeDepthBenchmark(_ options: BenchOptions) throws -> String {
    try BLAS.load()
    let threads = ComputeContext.defaultThreads
    let model = SyntheticCheckpoint.LanguageModel.vicuna7B
    let parent = SyntheticCheckpoint.benchDirectory()
    let candidates = [true, false].map { SyntheticCheckpoint(languageModel: model, multimodal: $0, layers: options.layers) }
    guard let checkpoint = candidates.first(where: { $0.isComplete(in: parent) }) else {
        return "No complete \(model.displayName) checkpoint of \(candidates[0].layerCount) layers in \(parent) (run `e2e` first); nothing measured.\n"
    }
    let config = checkpoint.languageConfig
    let dir = parent + "/" + checkpoint.layoutName
    let kv = options.kvCache ?? .sessionDefault
    let contexts = options.context.map { [$0] } ?? [1000, 2500]
    let tokens = options.quick ? 8 : 16
    func wanted(_ format: String) -> Bool { options.llmWeights?.contains(format) ?? true }
    var variants: [(format: String, source: String, load: () throws -> TransformerDecoder)] = []
    if wanted("BF16") {
        variants.append(("BF16", dir, { try TransformerDecoder(config: config, weights: WeightStore(directory: dir)) }))
    }
    for format in [QuantFormat.q8_0, .q4_0] where wanted(format.rawValue) {
        let copy = dir + "-" + format.lowercaseName
        if fileExists(copy + "/.complete") {
            variants.append((format.rawValue, copy, { try TransformerDecoder(config: config, weights: WeightStore(directory: copy)) }))
        } else {
            print("decode-depth: no complete \(format.rawValue) copy \(copy); not measured")
        }
    }
    // llama.cpp's Q4_K_M of the LLM: the e2e benchmark's GGUF model directory, or the quantized
    // file it is made from, read in place (the BF16 GGUF it was quantized from is not needed).
    for type in ["Q4_K_M"] where wanted(type) {
        guard let path = LlamaCpp.existingQuantizedLLM(of: dir, type: type) else {
            print("decode-depth: no \(type) GGUF of \(dir) (\(LlamaCpp.quantizedLLMPath(of: dir, type: type))); not measured")
            continue
        }
        variants.append((type, path, {
            let file = try GGUFFile(path: path)
            return try TransformerDecoder(config: GGUFLanguageModel.reconcile(config, with: file), gguf: file)
        }))
    }
    let probe = ReadBandwidth()
    print("decode-depth: \(checkpoint.layerCount) layers in \(dir), KV \(kv), contexts \(contexts), \(tokens) tokens; load \(loadAverage())")

    var rows = "", stageTables = ""
    for v in variants {
        let decoder = try v.load()
        print("decode-depth: \(v.format) from \(v.source)")
        let layers = config.layerCount, h = config.hiddenSize, i = config.intermediateSize
        let qWidth = config.headCount * config.headDim, kvWidth = config.kvHeadCount * config.headDim
        // Every projection of a format has the same bytes per weight (whole blocks per row); Q4_K_M
        // mixes Q4_K and Q6_K matrices: its mean.
        let layerWeights = (qWidth + 2 * kvWidth) * h + h * qWidth + 3 * h * i
        let bytesPerWeight = Double(decoder.weightBytesPerToken - decoder.lmHead.byteCount) / Double(layers * layerWeights)
        let cache = try KVCache(config: config, capacity: contexts.max()! + tokens + 3, type: kv)
        fillCache(cache, positions: contexts.max()!, config: config)
        for positions in contexts {
            if cache.count > positions { try cache.truncate(to: positions) } else { cache.commit(count: positions) }
            let plain = ComputeContext(threads: threads)
            var token = 1
            for _ in 0..<2 { token = TokenSampler.argmax(try decoder.eval(tokens: [token], cache: cache, context: plain)) }
            print("decode-depth: \(v.format): memory after warm-up: \(hugePageSummary())")
            let bandwidthBefore = probe.measure(threads: threads, repeats: 3)
            let loadBefore = loadAverage()
            let clock = StageClock()
            var timed = ComputeContext(threads: threads)
            timed.stageClock = clock
            var seconds: [Double] = []
            let usage0 = processUsage()
            let attended = cache.count + tokens / 2   // mean positions attended over the steps
            for _ in 0..<tokens {
                let t0 = monotonicSeconds()
                token = TokenSampler.argmax(try decoder.eval(tokens: [token], cache: cache, context: timed))
                seconds.append(monotonicSeconds() - t0)
            }
            let usage1 = processUsage()
            let bandwidth = max(bandwidthBefore, probe.measure(threads: threads, repeats: 3))
            let wall = seconds.reduce(0, +), perToken = wall / Double(tokens)
            let median = seconds.sorted()[tokens / 2]
            let kvBytes = Double(layers * 2 * attended * kvWidth * kv.bytesPerValue)
            let bytes = Double(decoder.weightBytesPerToken) + kvBytes
            let cpu = (usage1.cpu - usage0.cpu) / (wall * Double(threads))
            let faults = Double(usage1.faults - usage0.faults) / Double(tokens)
            let line = "\(v.format), \(positions) positions: \(fmt(1 / perToken, 2)) tok/s (median step \(fmt(median * 1e3, 1)) ms), "
                + "\(fmt(bytes / perToken / 1e9)) GB/s = \(fmt(100 * bytes / perToken / bandwidth, 0)) % of \(fmt(bandwidth / 1e9)) GB/s; "
                + "CPU \(fmt(100 * cpu, 0)) % of \(threads) threads, \(fmt(faults, 0)) page faults/token; load \(loadBefore) -> \(loadAverage())"
            print("decode-depth: " + line)
            rows += "| \(v.format) | \(positions) | \(fmt(1 / perToken, 2)) | \(fmt(median * 1e3, 1)) | \(fmt(bytes / 1e9, 2)) "
                + "| \(fmt(bytes / perToken / 1e9)) | \(fmt(bandwidth / 1e9)) | **\(fmt(100 * bytes / perToken / bandwidth, 0)) %** "
                + "| \(fmt(100 * cpu, 0)) % | \(fmt(faults, 0)) | \(loadBefore) / \(loadAverage()) |\n"

            // The split: each step's time per token and the bytes it reads.
            let stageBytes: [String: Double] = [
                DecoderStage.qkv: Double(layers * (qWidth + 2 * kvWidth) * h) * bytesPerWeight,
                DecoderStage.output: Double(layers * h * qWidth) * bytesPerWeight,
                DecoderStage.gateUp: Double(layers * 2 * i * h) * bytesPerWeight,
                DecoderStage.down: Double(layers * h * i) * bytesPerWeight,
                DecoderStage.attention: kvBytes,
                DecoderStage.head: Double(decoder.lmHead.byteCount),
            ]
            stageTables += "\n\(v.format), \(positions) positions (\(fmt(perToken * 1e3, 1)) ms per token):\n\n"
                + "| step | ms per token | share of the token | MB read | GB/s |\n|---|---|---|---|---|\n"
            var inStages = 0.0
            for e in clock.entries {
                let ms = e.seconds / Double(tokens) * 1e3
                inStages += ms
                let b = stageBytes[e.name]
                stageTables += "| \(e.name) | \(fmt(ms, 2)) | \(fmt(100 * ms / (perToken * 1e3), 1)) % "
                    + "| \(b.map { fmt($0 / 1e6, 0) } ?? "–") | \(b.map { fmt($0 / (ms / 1e3) / 1e9) } ?? "–") |\n"
            }
            let rest = perToken * 1e3 - inStages
            stageTables += "| outside the steps (embedding, batcher, layer loop) | \(fmt(rest, 2)) | \(fmt(100 * rest / (perToken * 1e3), 1)) % | – | – |\n"
        }
    }
    return """
        One session decoding \(model.displayName) at full depth (\(config.layerCount) layers; synthetic weights, \
        `\(checkpoint.layoutName)`, its `ModelQuantizer` copies and llama.cpp's Q4_K_M GGUF of its LLM, read only; \
        Q4_K_M's MB per step below take its mean bytes per weight), \(threads) threads, KV cache \(kv) filled with \
        made-up keys and values for the context, then \(tokens) greedy steps timed one by one (after 2 untimed). GB read per \
        token = weights (projections and lm_head) + the KV rows attended (mean over the steps); GB/s = that / mean step time; \
        bound = read bandwidth (1 GiB, best of 1/4/8 streams per thread, best of 3) just before and after, the larger. CPU = \
        process CPU time / (wall × threads) over the steps (below 100 %: other processes had the cores).

        | weights | context | tok/s | median ms | GB read / token | GB/s | bound GB/s | share of bound | CPU | page faults / token | load before / after |
        |---|---|---|---|---|---|---|---|---|---|---|
        \(rows)
        Time per token by step (`ComputeContext.stageClock`, wall time of each step on the calling thread, parallel loops \
        included):
        \(stageTables)
        """
}

/// Stores pseudo-random keys and values (uniform in ±0.5) at positions `0 ..< positions` of every
/// layer of `cache` and marks them valid.
private func fillCache(_ cache: KVCache, positions: Int, config: LanguageModelConfig) {
    let width = config.kvHeadCount * config.headDim, chunk = 64
    var rng = SplitMix(seed: 11)
    var rows = [Float](repeating: 0, count: chunk * width)
    for layer in 0..<config.layerCount {
        for matrix in [cache.keys(layer: layer), cache.values(layer: layer)] {
            for p in stride(from: 0, to: positions, by: chunk) {
                let n = min(chunk, positions - p)
                for j in 0..<(n * width) { rows[j] = rng.nextFloat() - 0.5 }
                rows.withUnsafeBufferPointer { matrix.store($0.baseAddress!, rows: n, at: p) }
            }
        }
    }
    cache.commit(count: positions)
}

/// CPU seconds (user + system) and page faults (minor + major) of this process so far.
private func processUsage() -> (cpu: Double, faults: Int) {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    let cpu = Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
    return (cpu, u.ru_minflt + u.ru_majflt)
}

/// Resident memory and how much of it huge pages map (/proc/self/smaps_rollup: Rss,
/// AnonHugePages, FilePmdMapped), e.g. "Rss 4.1 GB, AnonHugePages 3.9 GB, FilePmdMapped 0.0 GB".
private func hugePageSummary() -> String {
    guard let f = fopen("/proc/self/smaps_rollup", "r") else { return "smaps_rollup unreadable" }
    defer { fclose(f) }
    var parts: [String] = []
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let fields = s.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, ["Rss:", "AnonHugePages:", "FilePmdMapped:"].contains(String(fields[0])),
              let kb = Double(fields[1]) else { continue }
        parts.append("\(fields[0].dropLast()) \(fmt(kb / 1e6, 1)) GB")
    }
    return parts.joined(separator: ", ")
}
