#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `llm`: the language model at the real 7B shapes (Vicuna-7B and Qwen2-7B) with synthetic
/// BF16 weights, as the releases store them: prefill of a 1,000-token prompt (logits of the
/// last position) and greedy decoding after it, best of N; the decode time is set against
/// the memory-bandwidth bound measured in the same run (bytes read per token / read
/// bandwidth). By default only `defaultLayers` decoder layers are built (a full 7B checkpoint
/// is 13–15 GB): full-depth figures are extrapolated from the time measured inside the
/// layers, and say so. `--layers N` changes the depth. PyTorch (scripts/bench_torch.py llm,
/// same shapes and depth) runs alongside when `import torch` works.
var languageBenchmark: Benchmark {
    Benchmark(name: "llm", summary: "LLM prefill and decode at Vicuna-7B / Qwen2-7B shapes, synthetic BF16 weights",
              run: runLanguageBenchmark)
}

private let defaultLayers = 2
private let promptTokens = 1000
private let decodeTokens = 16

/// A full-size model shape (SPEC §6).
private struct LLMShape: Sendable {
    let name: String
    let torchArch: String
    let config: LanguageModelConfig
}

private let shapes = [
    LLMShape(name: "Vicuna-7B", torchArch: "llama", config: LanguageModelConfig(
        architecture: .llama, hiddenSize: 4096, intermediateSize: 11008, layerCount: 32, headCount: 32,
        kvHeadCount: 32, vocabSize: 32000, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 4096,
        tieWordEmbeddings: false, bosTokenId: 1, eosTokenIds: [2])),
    LLMShape(name: "Qwen2-7B", torchArch: "qwen2", config: LanguageModelConfig(
        architecture: .qwen2, hiddenSize: 3584, intermediateSize: 18944, layerCount: 28, headCount: 28,
        kvHeadCount: 4, vocabSize: 152064, rmsNormEps: 1e-6, ropeTheta: 1_000_000, maxPositionEmbeddings: 32768,
        tieWordEmbeddings: false, bosTokenId: nil, eosTokenIds: [151645, 151643])),
]

private func runLanguageBenchmark(_ options: BenchOptions) throws -> String {
    try BLAS.load()
    let threads = ComputeContext.defaultThreads
    let repeats = options.repetitions(3)
    let bandwidth = measureReadBandwidth(bytes: 1 << 30, threads: threads, repeats: 3)
    print("llm: read bandwidth \(fmt(bandwidth / 1e9, 1)) GB/s (\(threads) threads, 1 GiB, best of 3)")

    var md = """
        LLM at 7B shapes, synthetic BF16 weights in a memory-mapped safetensors file, float32 compute, \
        \(threads) threads, best of \(repeats). Prefill: a \(promptTokens)-token prompt, logits of the last \
        position. Decode: \(decodeTokens) greedy tokens after it (context \(promptTokens)–\(promptTokens + decodeTokens)). \
        Read bandwidth measured in the same run: **\(fmt(bandwidth / 1e9, 1)) GB/s** (sum of a 1 GiB buffer, \(threads) threads). \
        Decode bound = (weight bytes read per token + KV-cache bytes read per token) / that bandwidth.


        """
    var rows: [String] = []
    var torchRows: [String] = []
    for shape in shapes {
        let full = shape.config.layerCount
        let layers = min(full, max(2, options.layers ?? defaultLayers))
        var config = shape.config
        config.layerCount = layers
        let path = try syntheticCheckpoint(config: config, name: shape.torchArch)
        let decoder = try TransformerDecoder(config: config, weights: WeightStore(paths: [path]))
        let clock = LayerClock()
        let context = ComputeContext(threads: threads, shouldAbort: clock.poll)
        var random = Xoshiro256StarStar(seed: 7)
        let prompt = (0..<promptTokens).map { _ in Int(random.next() % UInt64(config.vocabSize)) }
        let cache = try KVCache(config: config, capacity: promptTokens + decodeTokens + 1)

        // Prefill.
        print("llm: \(shape.name), \(layers) of \(full) layers: prefill \(promptTokens) tokens")
        var prefill = (seconds: Double.infinity, layers: 0.0)
        var last: [Float] = []
        for _ in 0..<repeats {
            cache.reset()
            clock.reset()
            let t0 = now()
            last = try decoder.eval(tokens: prompt, cache: cache, context: context)
            let t = now() - t0
            if t < prefill.seconds { prefill = (t, clock.timeInsideLayers(layers: layers)) }
        }

        // Decode.
        print("llm: \(shape.name): decode \(decodeTokens) tokens")
        var decode = (seconds: Double.infinity, layers: 0.0)
        for _ in 0..<repeats {
            try cache.truncate(to: promptTokens)
            var token = TokenSampler.argmax(last)
            var inLayers = 0.0
            let t0 = now()
            for _ in 0..<decodeTokens {
                clock.reset()
                let logits = try decoder.eval(tokens: [token], cache: cache, context: context)
                inLayers += clock.timeInsideLayers(layers: layers)
                token = TokenSampler.argmax(logits)
            }
            let t = now() - t0
            if t < decode.seconds { decode = (t, inLayers) }
        }

        let perToken = decode.seconds / Double(decodeTokens)
        let kvBytes = 2 * layers * (promptTokens + decodeTokens / 2) * config.kvHeadCount * config.headDim * 4
        let bytesPerToken = decoder.weightBytesPerToken + kvBytes
        let boundSeconds = Double(bytesPerToken) / bandwidth
        let scale = Double(full - layers) / Double(layers)
        let fullPrefill = prefill.seconds + prefill.layers * scale
        let fullPerToken = (decode.seconds + decode.layers * scale) / Double(decodeTokens)
        let fullKV = 2 * full * (promptTokens + decodeTokens / 2) * config.kvHeadCount * config.headDim * 4
        let fullBytes = decoder.weightBytesPerToken + Int(Double(decoder.weightBytesPerToken - headBytes(config)) * scale) + fullKV
        rows.append("| \(shape.name) | \(layers) of \(full) | \(fmt(Double(promptTokens) / prefill.seconds, 1)) | "
            + "\(fmt(perToken * 1000, 0)) | \(fmt(1 / perToken, 2)) | \(fmt(Double(bytesPerToken) / 1e9, 2)) | "
            + "\(fmt(boundSeconds * 1000, 0)) | **\(fmt(100 * boundSeconds / perToken, 0)) %** | "
            + "\(fmt(Double(promptTokens) / fullPrefill, 1)) | \(fmt(1 / fullPerToken, 2)) | "
            + "\(fmt(Double(fullBytes) / bandwidth / fullPerToken * 100, 0)) % |")
        print(rows.last ?? "")

        if let torch = torchFigures(arch: shape.torchArch, layers: layers, threads: threads, repeats: repeats) {
            torchRows += torch.map { "| \(shape.name) | \(layers) of \(full) | " + $0 }
        }
    }
    md += """
        | model | layers run | prefill tok/s | decode ms/token | decode tok/s | bytes read/token (GB) | bound ms/token | decode vs bound | full depth: prefill tok/s | full depth: decode tok/s | full depth: vs bound |
        |---|---|---|---|---|---|---|---|---|---|---|
        \(rows.joined(separator: "\n"))

        Full-depth columns are extrapolated: measured time + (time inside the decoder layers, from the \
        per-layer abort polls) × (full − run) / run; the KV cache (float32) is read in full by every \
        decoded token and counted in the bound.

        """
    if torchRows.isEmpty {
        md += "\nPyTorch: not run (`import torch` failed for `\(benchPython())`; set LLAVAUHD_BENCH_PYTHON).\n"
    } else {
        md += """

            PyTorch side by side (`scripts/bench_torch.py llm`, transformers with random weights, same \
            shapes, depth, prompt and threads, SDPA attention; full depth extrapolated the same way):

            | model | layers run | compute | prefill tok/s | decode tok/s | full depth: prefill tok/s | full depth: decode tok/s |
            |---|---|---|---|---|---|---|
            \(torchRows.joined(separator: "\n"))

            """
    }
    return md
}

/// Bytes of the output head (read once per token whatever the depth).
private func headBytes(_ c: LanguageModelConfig) -> Int { c.vocabSize * c.hiddenSize * 2 }

/// Times the decoder layers through the abort callback, which `eval` polls before each layer.
private final class LayerClock: @unchecked Sendable {
    private var first = 0.0, last = 0.0, polls = 0

    func reset() { polls = 0 }

    func poll() -> Bool {
        let t = now()
        if polls == 0 { first = t }
        last = t
        polls += 1
        return false
    }

    /// Seconds spent in all layers of the last call(s): the span between the first and the
    /// last poll covers polls − 1 layer runs; scaled to all `polls` of them.
    func timeInsideLayers(layers: Int) -> Double {
        guard polls > 1 else { return 0 }
        return (last - first) * Double(polls) / Double(polls - 1)
    }
}

/// Writes (once, then reuses) a safetensors file with every decoder tensor of `config` in
/// BF16, values of magnitude 2⁻⁷…2⁻⁶ with random signs and mantissas (norm weights 1).
private func syntheticCheckpoint(config c: LanguageModelConfig, name: String) throws -> String {
    let dir = ".build/bench-synthetic"
    let path = "\(dir)/\(name)-\(c.hiddenSize)x\(c.layerCount)-bf16.safetensors"
    let h = c.hiddenSize, q = c.headCount * c.headDim, kv = c.kvHeadCount * c.headDim, i = c.intermediateSize
    var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [c.vocabSize, h])]
    for l in 0..<c.layerCount {
        let p = "model.layers.\(l)."
        tensors += [(p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
                    (p + "self_attn.q_proj.weight", [q, h]), (p + "self_attn.k_proj.weight", [kv, h]),
                    (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.o_proj.weight", [h, q]),
                    (p + "mlp.gate_proj.weight", [i, h]), (p + "mlp.up_proj.weight", [i, h]),
                    (p + "mlp.down_proj.weight", [h, i])]
        if c.architecture == .qwen2 {
            tensors += [(p + "self_attn.q_proj.bias", [q]), (p + "self_attn.k_proj.bias", [kv]),
                        (p + "self_attn.v_proj.bias", [kv])]
        }
    }
    tensors += [("model.norm.weight", [h]), ("lm_head.weight", [c.vocabSize, h])]

    var entries: [String] = []
    var offset = 0
    for (n, shape) in tensors {
        let bytes = shape.reduce(2, *)
        entries.append("\"\(n)\":{\"dtype\":\"BF16\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(offset + bytes)]}")
        offset += bytes
    }
    var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    let total = 8 + header.count + offset
    var st = stat()
    if stat(path, &st) == 0, Int(st.st_size) == total { return path }

    print("llm: writing \(fmt(Double(total) / 1e9, 2)) GB synthetic checkpoint \(path)")
    mkdir(".build", 0o755)
    mkdir(dir, 0o755)
    guard let f = fopen(path + ".part", "w") else { throw LlavaError(.io, "cannot write \(path)") }
    var length = UInt64(header.count).littleEndian
    fwrite(&length, 8, 1, f)
    fwrite(header, 1, header.count, f)
    var random = Xoshiro256StarStar(seed: 1)
    let chunk = 1 << 22
    var buffer = [UInt16](repeating: 0, count: chunk)
    for (n, shape) in tensors {
        let count = shape.reduce(1, *)
        let isNorm = n.hasSuffix("layernorm.weight") || n == "model.norm.weight"
        var done = 0
        while done < count {
            let m = min(chunk, count - done)
            buffer.withUnsafeMutableBufferPointer { b in
                if isNorm {
                    for j in 0..<m { b[j] = 0x3F80 }  // 1.0
                } else {
                    var j = 0
                    while j < m {
                        var r = random.next()
                        for _ in 0..<4 where j < m {
                            // sign | exponent 2⁻⁷ (0x3C) | 7 random mantissa bits
                            b[j] = UInt16(truncatingIfNeeded: (r & 0x8000) | 0x3C00 | ((r >> 16) & 0x7F))
                            r >>= 16
                            j += 1
                        }
                    }
                }
                _ = fwrite(b.baseAddress, 2, m, f)
            }
            done += m
        }
    }
    guard fclose(f) == 0, rename(path + ".part", path) == 0 else { throw LlavaError(.io, "cannot write \(path)") }
    return path
}

/// Bytes per second of summing a `bytes`-sized buffer with `threads` threads (SIMD, several
/// accumulators), best of `repeats`.
private func measureReadBandwidth(bytes: Int, threads: Int, repeats: Int) -> Double {
    let count = bytes / 4
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1, count: count)
    let parts = chunks(count / 64, parts: threads * 8).map { ($0.lowerBound * 64)..<($0.upperBound * 64) }
    let sums = UnsafeMutablePointer<Float>.allocate(capacity: parts.count)
    defer { sums.deallocate() }
    let s = SendablePointer(sums)
    let seconds = bestOf(repeats) {
        parallelFor(parts.count, threads: threads) { p in
            let raw = UnsafeRawPointer(buffer)
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var i = parts[p].lowerBound
            while i < parts[p].upperBound {
                a0 += raw.load(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                a1 += raw.load(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
                a2 += raw.load(fromByteOffset: i * 4 + 128, as: SIMD16<Float>.self)
                a3 += raw.load(fromByteOffset: i * 4 + 192, as: SIMD16<Float>.self)
                i += 64
            }
            s.p[p] = (a0 + a1 + a2 + a3).sum()
        }
    }
    return Double(count * 4) / seconds
}

/// The Python that runs scripts/bench_torch.py.
private func benchPython() -> String {
    getenv("LLAVAUHD_BENCH_PYTHON").map { String(cString: $0) } ?? "python3"
}

/// Table cells (compute, prefill, decode, full-depth prefill and decode) from bench_torch.py
/// llm in fp32 and bf16, or nil when torch is unavailable.
private func torchFigures(arch: String, layers: Int, threads: Int, repeats: Int) -> [String]? {
    let python = benchPython()
    guard fileExists("scripts/bench_torch.py"), system("\(python) -c 'import torch' >/dev/null 2>&1") == 0 else { return nil }
    var cells: [String] = []
    for compute in ["fp32", "bf16"] {
        print("llm: PyTorch \(arch) \(compute)")
        let command = "\(python) scripts/bench_torch.py llm --arch \(arch) --layers \(layers) --prompt \(promptTokens) "
            + "--decode \(decodeTokens) --threads \(threads) --repeat \(repeats) --compute \(compute) 2>/dev/null"
        guard let output = runCommand(command), let json = try? JSONValue.parse(output) else {
            cells.append("\(compute) | failed | | | |")
            continue
        }
        if let error = json["error"]?.stringValue {
            cells.append("\(compute) | \(error) | | | |")
            continue
        }
        let prefill = json["prefill_tokens_per_s"]?.doubleValue ?? .nan
        let decode = json["decode_tokens_per_s"]?.doubleValue ?? .nan
        let full = json["extrapolated_full_depth"]
        let fullPrefill = full?["prefill_tokens_per_s"]?.doubleValue ?? prefill
        let fullDecode = full?["decode_tokens_per_s"]?.doubleValue ?? decode
        cells.append("\(compute) | \(fmt(prefill, 1)) | \(fmt(decode, 2)) | \(fmt(fullPrefill, 1)) | \(fmt(fullDecode, 2)) |")
    }
    return cells
}

/// The last line of a command's standard output that starts with "{", or nil if it failed.
private func runCommand(_ command: String) -> String? {
    guard let pipe = popen(command, "r") else { return nil }
    var line = [CChar](repeating: 0, count: 1 << 16)
    var result: String?
    while fgets(&line, Int32(line.count), pipe) != nil {
        let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if s.hasPrefix("{") { result = s }
    }
    return pclose(pipe) == 0 ? result : nil
}

private func fmt(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "–" }
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buffer, 64, "%.\(decimals)f", $0) }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
