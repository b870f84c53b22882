#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `e2e`: time to first answer on a full-shape LLaVA-UHD v2 Vicuna-7B directory (synthetic BF16
/// weights from `SyntheticCheckpoint`, the test assets' Vicuna tokenizer), one photo question
/// through `ChatSession.chat` (slicing, vision tower, VDIM + Hiwin, prefill, 16 greedy tokens
/// with the end-of-sequence id ignored), per KV cache type, with the time of each stage, time to
/// first token, decode tokens/s against the bandwidth bound, and the machine's peaks measured by
/// the benchmark itself.
///
/// A full-depth directory is 14.4 GB; by default the LLM is built at 1 and `--layers N` (default
/// 2) layers, and prefill and decode are extrapolated to 32 layers by a line through the two
/// depths (time = fixed part + per-layer part × layers). `--layers 32` runs the full depth:
///
///     swift run -c release llavauhd-bench e2e --layers 32     # 14.4 GB on disk, ~16 GB mapped
var e2eBenchmark: Benchmark { Benchmark(
    name: "e2e",
    summary: "time to first token of a photo question on a 7B-shaped LLaVA-UHD v2 (stages, decode vs bandwidth bound, machine peaks)",
    run: runE2EBenchmark) }

/// One core's and all threads' arithmetic peaks and the read bandwidth, measured here
/// (register-resident loops of Sources/CLlavaUHD/peak_loops.c; `ReadBandwidth`).
struct MachinePeaks {
    /// Operations per second with `threads` threads (0 when the CPU lacks the instructions).
    var fmaF32 = 0.0, fmaF16 = 0.0, dotBF16 = 0.0, dotI8 = 0.0
    /// Read bandwidth with `threads` threads, bytes per second.
    var bandwidth = 0.0

    static func measure(threads: Int, repeats: Int) -> MachinePeaks {
        func rate(_ loop: @escaping @Sendable (Int) -> Double) -> Double {
            let iterations = 2_000_000
            var best = 0.0
            for _ in 0..<repeats {
                let ops = UnsafeMutablePointer<Double>.allocate(capacity: threads)
                defer { ops.deallocate() }
                let o = SendablePointer(ops)
                let t0 = monotonicSeconds()
                parallelFor(threads, threads: threads) { o.p[$0] = loop(iterations) }
                let seconds = monotonicSeconds() - t0
                best = max(best, (0..<threads).reduce(0) { $0 + ops[$1] } / seconds)
            }
            return best
        }
        var p = MachinePeaks()
        p.fmaF32 = rate { luhd_peak_fma_f32($0) }
        p.fmaF16 = rate { luhd_peak_fma_f16($0) }
        p.dotBF16 = rate { luhd_peak_dot_bf16($0) }
        p.dotI8 = rate { luhd_peak_dot_i8($0) }
        p.bandwidth = ReadBandwidth(bytes: 1 << 28).measure(threads: threads, repeats: repeats)
        return p
    }

    var line: String {
        func g(_ x: Double) -> String { x > 0 ? fmt(x / 1e9, 0) : "n/a" }
        return "float32 FMA \(g(fmaF32)) GFLOP/s, FP16 FMA \(g(fmaF16)) GFLOP/s, BF16 dot \(g(dotBF16)) GFLOP/s, "
            + "int8 VNNI \(g(dotI8)) GOP/s, read bandwidth \(fmt(bandwidth / 1e9)) GB/s"
    }
}

/// What one chat turn measured.
private struct TurnFigures {
    var views = 0, positions = 0, tokens = 0
    var images = 0.0, prefill = 0.0, decode = 0.0
    /// The 1-minute load average when the turn ended (other work on the machine skews it).
    var load = ""
    /// Decode time of one token (the turn's decode time over its tokens).
    var perToken: Double { decode / Double(max(1, tokens)) }
}

private func runE2EBenchmark(_ options: BenchOptions) throws -> String {
    let threads = ComputeContext.defaultThreads
    let model = SyntheticCheckpoint.LanguageModel.vicuna7B
    let fullDepth = model.layers
    let depth = min(max(1, options.layers ?? 2), fullDepth)
    let depths = depth == 1 || depth == fullDepth ? [depth] : [1, depth]
    // Two photos (one with --quick).
    let photos = ["images/grace_hopper.jpg", "images/examples.jpg"].prefix(options.quick ? 1 : 2)
        .map { SyntheticCheckpoint.testAssets + "/" + $0 }.filter(fileExists)
    guard !photos.isEmpty else { return "not run: no photos in the test assets (set LLAVAUHD_TEST_ASSETS)\n" }
    let kvTypes: [KVCacheType] = [.float32, .float16]
    let answerTokens = 16

    // figures[photo][kv][depth index]
    var figures: [[[TurnFigures]]] = Array(repeating: Array(repeating: [], count: kvTypes.count), count: photos.count)
    var residentAfter = 0
    for d in depths {
        let checkpoint = SyntheticCheckpoint(languageModel: model, multimodal: true, layers: d)
        let (dir, written, seconds) = try checkpoint.ensure(in: SyntheticCheckpoint.benchDirectory())
        if written { print("wrote \(dir) (\(megabytes(checkpoint.totalBytes))) in \(fmt(seconds)) s") }
        guard SyntheticCheckpoint.installTestTokenizer(in: dir) else {
            return "not run: no tokenizer.model in the test assets (set LLAVAUHD_TEST_ASSETS)\n"
        }
        let llava = try LlavaModel(path: dir, options: .init(threads: threads))
        for (i, path) in photos.enumerated() {
            let image = try ImageDecoder.decodeFile(path)
            for (k, kv) in kvTypes.enumerated() {
                var sessionOptions = ChatSession.Options()
                sessionOptions.kvCacheType = kv
                sessionOptions.imageCacheCapacity = 0
                let session = try ChatSession(model: llava, options: sessionOptions)
                var parameters = ChatParameters()
                parameters.generation = GenerationParameters(maxNewTokens: answerTokens, stopTokenIds: [])
                let reply = try session.chat("<image>\nWhat is in this photo?", images: [image], parameters: parameters)
                var f = TurnFigures()
                f.positions = reply.promptPositions
                f.tokens = reply.tokens.count
                f.images = reply.timings.imageEncoding
                f.prefill = reply.timings.prefill
                f.decode = reply.timings.decode
                f.views = try llava.plan(for: image).views.count
                f.load = loadAverage()
                figures[i][k].append(f)
                print("\(d) layers, \(path.split(separator: "/").last ?? ""), KV \(kv): \(f.positions) positions, images \(fmt(f.images)) s, prefill \(fmt(f.prefill)) s, decode \(fmt(Double(f.tokens) / max(f.decode, 1e-9))) tok/s (load \(loadAverage()))")
            }
        }
        residentAfter = max(residentAfter, residentBytes())
    }
    let peakResident = peakResidentBytes()
    let peaks = MachinePeaks.measure(threads: threads, repeats: options.repetitions(3))

    /// Full-depth value from the measured depths (a line through two, or the one measured).
    func extrapolate(_ values: [Double]) -> Double {
        guard depths.count == 2 else { return values[0] * (depths[0] == fullDepth ? 1 : Double(fullDepth) / Double(depths[0])) }
        let perLayer = (values[1] - values[0]) / Double(depths[1] - depths[0])
        return values[1] + perLayer * Double(fullDepth - depths[1])
    }

    // Bytes one decoded token reads at full depth: every layer's BF16 matrices, the LM head, and
    // the KV cache up to the prompt's end.
    let c = SyntheticCheckpoint(languageModel: model, multimodal: true).languageConfig
    let qWidth = c.headCount * c.headDim, kvWidth = c.kvHeadCount * c.headDim
    let layerWeights = 2 * c.hiddenSize * qWidth + 2 * c.hiddenSize * kvWidth + 3 * c.hiddenSize * c.intermediateSize
    let weightBytes = 2 * (fullDepth * layerWeights + c.vocabSize * c.hiddenSize)

    var md = """
    \(machineLine()); \(threads) threads. Machine peaks measured by this benchmark: \(peaks.line). \
    \(CPUProfile.current).

    Synthetic LLaVA-UHD v2 Vicuna-7B directory (BF16 weights, real shapes and names), the test assets' \
    Vicuna tokenizer; one turn "<image> What is in this photo?" with \(answerTokens) greedy tokens \
    (end of sequence ignored), exact arithmetic. LLM measured at \(depths.map(String.init).joined(separator: " and ")) \
    layer(s)\(depths == [fullDepth] ? "" : ", prefill and decode extrapolated to \(fullDepth) layers (fixed + per-layer line)"). \
    Decode bound = read bandwidth / bytes per token (\(megabytes(weightBytes)) of BF16 weights + the KV cache up to the prompt's end). \
    Resident memory after the turns \(megabytes(residentAfter)), peak \(megabytes(peakResident)) (whole process, \
    at the depths measured).

    | photo | views | prompt positions | KV cache | images | prefill (\(fullDepth) layers) | time to first token | decode tok/s | bound tok/s | share of bound | KV bytes / token | load at each depth |
    |---|---|---|---|---|---|---|---|---|---|---|---|

    """
    for (i, path) in photos.enumerated() {
        for (k, kv) in kvTypes.enumerated() {
            let runs = figures[i][k]
            guard let last = runs.last else { continue }
            let prefill = extrapolate(runs.map(\.prefill))
            let perToken = extrapolate(runs.map(\.perToken))
            let kvBytes = 2 * fullDepth * kvWidth * kv.bytesPerValue * last.positions
            let bound = peaks.bandwidth / Double(weightBytes + kvBytes)
            let ttft = last.images + prefill + perToken
            md += "| \(path.split(separator: "/").last ?? "") | \(last.views) | \(last.positions) | \(kv) | \(fmt(last.images)) s "
                + "| \(fmt(prefill)) s (\(fmt(Double(last.positions) / prefill)) tok/s) | \(fmt(ttft)) s | \(fmt(1 / perToken, 2)) "
                + "| \(fmt(bound, 2)) | \(fmt(100 / perToken / bound, 0)) % | \(megabytes(kvBytes)) | \(runs.map(\.load).joined(separator: ", ")) |\n"
        }
    }
    md += """

    The two-depth line magnifies timing noise (a share of the bound above 100 % means the machine's load \
    changed between the depths): on a shared machine, trust only the full-depth run. Full depth (14.4 GB written once under $LLAVAUHD_BENCH_DIR or /tmp/llavauhd-bench): \
    `swift run -c release llavauhd-bench e2e --layers \(fullDepth)`.

    """
    return md
}
