#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `e2e`: time to first answer on a full-shape LLaVA-UHD v2 Vicuna-7B directory (synthetic BF16
/// weights from `SyntheticCheckpoint`, the test assets' Vicuna tokenizer), one photo question
/// through `ChatSession.chat` (slicing, vision tower, VDIM + Hiwin, prefill, 16 greedy tokens
/// with the end-of-sequence id ignored), for each `E2EVariant` (LLM weights BF16, Q8_0 or Q4_0;
/// exact or fast precision; KV cache type), with the time of each stage, time to first token,
/// prefill and decode against the machine's peaks and bandwidth bound, measured by the benchmark
/// itself.
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

/// One configuration of the model the benchmark asks the photo question with.
private struct E2EVariant {
    /// LLM weights: nil = the checkpoint's BF16, else `ModelQuantizer`'s copy (LM head included).
    var format: QuantFormat?
    var precision: Precision
    var kv: KVCacheType

    var weightsName: String { format?.rawValue ?? "BF16" }

    /// Bytes of one LLM weight as stored (BF16 2; a block format's block bytes per element).
    var bytesPerWeight: Double {
        guard let format else { return 2 }
        return Double(format.blockBytes) / Double(format.blockElements)
    }

    /// The peak prefill's matrix products can reach: float32 FMA for exact BF16 weights (widened to
    /// float32), the bf16 dot peak for fast BF16 where fast picks bf16 products, int8 VNNI for the
    /// quantized formats (int8 activations). Operations per second.
    func prefillPeak(_ peaks: MachinePeaks) -> (value: Double, name: String) {
        if format != nil, peaks.dotI8 > 0 { return (peaks.dotI8, "int8 VNNI") }
        if precision == .fast, precision.matrixArithmetic() == .bfloat16, peaks.dotBF16 > 0 { return (peaks.dotBF16, "bf16 dot") }
        return (peaks.fmaF32, "float32 FMA")
    }

    /// Exact BF16 with each KV cache type, fast BF16, and the fast quantized LLMs with the default
    /// 16-bit cache.
    static let all: [E2EVariant] = [
        E2EVariant(format: nil, precision: .exact, kv: .float32),
        E2EVariant(format: nil, precision: .exact, kv: .float16),
        E2EVariant(format: nil, precision: .fast, kv: .float16),
        E2EVariant(format: .q8_0, precision: .fast, kv: .float16),
        E2EVariant(format: .q4_0, precision: .fast, kv: .float16),
    ]
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
    let variants = E2EVariant.all
    let answerTokens = 16

    // figures[photo][variant][depth index]
    var figures: [[[TurnFigures]]] = Array(repeating: Array(repeating: [], count: variants.count), count: photos.count)
    var residentAfter = 0
    for d in depths {
        let checkpoint = SyntheticCheckpoint(languageModel: model, multimodal: true, layers: d)
        let (dir, written, seconds) = try checkpoint.ensure(in: SyntheticCheckpoint.benchDirectory())
        if written { print("wrote \(dir) (\(megabytes(checkpoint.totalBytes))) in \(fmt(seconds)) s") }
        guard SyntheticCheckpoint.installTestTokenizer(in: dir) else {
            return "not run: no tokenizer.model in the test assets (set LLAVAUHD_TEST_ASSETS)\n"
        }
        for (v, variant) in variants.enumerated() {
            let modelDirectory = try variant.format.map { try quantizedCopy(of: dir, format: $0) } ?? dir
            let llava = try LlavaModel(path: modelDirectory, options: .init(threads: threads,
                                                                        matrixArithmetic: variant.precision.matrixArithmetic(),
                                                                        visionArithmetic: variant.precision.visionArithmetic()))
            for (i, path) in photos.enumerated() {
                let image = try ImageDecoder.decodeFile(path)
                var sessionOptions = ChatSession.Options()
                sessionOptions.kvCacheType = variant.kv
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
                figures[i][v].append(f)
                print("\(d) layers, \(path.split(separator: "/").last ?? ""), \(variant.weightsName) \(variant.precision.name) KV \(variant.kv): "
                      + "\(f.positions) positions, images \(fmt(f.images)) s, prefill \(fmt(f.prefill)) s, "
                      + "decode \(fmt(Double(f.tokens) / max(f.decode, 1e-9))) tok/s (load \(loadAverage()))")
            }
            residentAfter = max(residentAfter, residentBytes())
        }
    }
    let peakResident = peakResidentBytes()
    let peaks = MachinePeaks.measure(threads: threads, repeats: options.repetitions(3))

    /// Full-depth value from the measured depths (a line through two, or the one measured).
    func extrapolate(_ values: [Double]) -> Double {
        guard depths.count == 2 else { return values[0] * (depths[0] == fullDepth ? 1 : Double(fullDepth) / Double(depths[0])) }
        let perLayer = (values[1] - values[0]) / Double(depths[1] - depths[0])
        return values[1] + perLayer * Double(fullDepth - depths[1])
    }

    // Weights one decoded token reads at full depth: every layer's matrices and the LM head (read
    // at the variant's bytes per weight), plus the KV cache up to the prompt's end. Prefill's
    // matrix work is 2 operations per layer weight and position (attention not counted).
    let c = SyntheticCheckpoint(languageModel: model, multimodal: true).languageConfig
    let qWidth = c.headCount * c.headDim, kvWidth = c.kvHeadCount * c.headDim
    let layerWeights = 2 * c.hiddenSize * qWidth + 2 * c.hiddenSize * kvWidth + 3 * c.hiddenSize * c.intermediateSize
    let decodedWeights = fullDepth * layerWeights + c.vocabSize * c.hiddenSize

    var md = """
    \(machineLine()); \(threads) threads. Machine peaks measured by this benchmark: \(peaks.line). \
    \(CPUProfile.current).

    Synthetic LLaVA-UHD v2 Vicuna-7B directory (BF16 weights, real shapes and names), the test assets' \
    Vicuna tokenizer; one turn "<image> What is in this photo?" with \(answerTokens) greedy tokens \
    (end of sequence ignored). LLM measured at \(depths.map(String.init).joined(separator: " and ")) \
    layer(s)\(depths == [fullDepth] ? "" : ", prefill and decode extrapolated to \(fullDepth) layers (fixed + per-layer line)"). \
    Weights: BF16 as written, or `ModelQuantizer`'s Q8_0 / Q4_0 copy of the LLM (LM head included; vision \
    stays BF16); precision `exact` (float32 products) or `fast` (on this CPU: vision \(Precision.fast.visionArithmetic().rawValue), \
    LLM prefill \(Precision.fast.matrixArithmetic().rawValue) for BF16 weights, int8 activations for Q8_0/Q4_0). \
    Prefill share = 2 × \(fmt(Double(fullDepth * layerWeights) / 1e9, 2)) G layer weights × positions / prefill time, \
    against the peak its products can reach (float32 FMA for exact, bf16 dot for fast bf16, int8 VNNI for \
    Q8_0/Q4_0; attention not counted). Decode bound = read bandwidth / bytes per token (\(fmt(Double(decodedWeights) / 1e9, 2)) G \
    weights at the format's bytes per weight + the KV cache up to the prompt's end). \
    Resident memory after the turns \(megabytes(residentAfter)), peak \(megabytes(peakResident)) (whole process, \
    at the depths measured).

    | photo | views | prompt positions | LLM weights | precision | KV cache | images | prefill (\(fullDepth) layers) | prefill share of peak | time to first token | decode tok/s | bound tok/s | share of bound | KV bytes / token | load at each depth |
    |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|

    """
    for (i, path) in photos.enumerated() {
        for (v, variant) in variants.enumerated() {
            let runs = figures[i][v]
            guard let last = runs.last else { continue }
            let prefill = extrapolate(runs.map(\.prefill))
            let perToken = extrapolate(runs.map(\.perToken))
            let kvBytes = 2 * fullDepth * kvWidth * variant.kv.bytesPerValue * last.positions
            let bound = peaks.bandwidth / (Double(decodedWeights) * variant.bytesPerWeight + Double(kvBytes))
            let peak = variant.prefillPeak(peaks)
            let prefillShare = 2 * Double(fullDepth * layerWeights) * Double(last.positions) / prefill / peak.value
            let ttft = last.images + prefill + perToken
            md += "| \(path.split(separator: "/").last ?? "") | \(last.views) | \(last.positions) | \(variant.weightsName) "
                + "| \(variant.precision.name) | \(variant.kv) | \(fmt(last.images)) s "
                + "| \(fmt(prefill)) s (\(fmt(Double(last.positions) / prefill)) tok/s) | \(fmt(100 * prefillShare, 0)) % of \(peak.name) "
                + "| \(fmt(ttft)) s | \(fmt(1 / perToken, 2)) "
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
