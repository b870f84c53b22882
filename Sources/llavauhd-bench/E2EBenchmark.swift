#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `e2e`: time to first answer on full-shape LLaVA-UHD v2 directories (synthetic BF16 weights
/// from `SyntheticCheckpoint`, the test assets' tokenizers), one photo question through
/// `ChatSession.chat` (slicing, vision tower, VDIM + Hiwin, prefill, 16 greedy tokens with the
/// end-of-sequence id ignored), for each `E2EVariant` (LLM weights BF16, Q8_0, Q4_0 or a GGUF
/// Q4_K_M; exact or fast precision; KV cache type), with the time of each stage, time to first token,
/// prefill and decode against the machine's peaks and bandwidth bound, measured by the benchmark
/// itself.
///
/// Vicuna-7B and Qwen2-7B layouts (`--llm-models`; `--quick` runs Vicuna-7B only and one
/// photo); `--llm-weights` picks the weights' rows. A full-depth directory is 14.4 GB; by
/// default the LLM is built at `--layers N` (default 2) layers, and prefill and decode are
/// extrapolated to the full depth by the time spent inside those layers (`E2EClock.fullDepth`:
/// the rest of a turn counted once), best of several turns. `--layers 32` runs the full depth:
///
///     swift run -c release llavauhd-bench e2e --layers 32     # 14.4 GB on disk, ~16 GB mapped
var e2eBenchmark: Benchmark { Benchmark(
    name: "e2e",
    summary: "time to first token of a photo question on a 7B-shaped LLaVA-UHD v2 (stages, decode vs bandwidth bound, machine peaks)",
    run: runE2EBenchmark) }

/// One core's and all threads' arithmetic peaks and the read bandwidth, measured here
/// (register-resident loops of Sources/CLlavaUHD/peak_loops.c; `ReadBandwidth`).
///
/// Each arithmetic peak is the best of `peakRuns` runs of `peakIterations` loop iterations on
/// every thread (about 50 ms a run at one 512-bit instruction per cycle and 3.7 GHz), a run's
/// rate being the sum over its threads of each thread's operations per second of its own CPU
/// time. Wall time made the peak a measure of the machine's load instead: a single run of 2 M
/// iterations (6 ms) read the two-core int8 VNNI peak anywhere from 783 to 930 GOP/s on the same
/// quiet machine, since a thread woken late cuts it, and on a 2-vCPU Zen 3 with other processes
/// compiling, the best of 9 runs read the float32 FMA peak of 2 threads as 130 GFLOP/s while the
/// same run's sgemm reached 160. Thread CPU time leaves out the slices the scheduler gives to
/// other work; threads that share one core (SMT siblings) still halve each other's rate, as they
/// do in the products.
struct MachinePeaks {
    /// Operations per second with `threads` threads (0 when the CPU lacks the instructions).
    var fmaF32 = 0.0, fmaF16 = 0.0, dotBF16 = 0.0, dotI8 = 0.0
    /// The `vpmaddubsw` + `vpmaddwd` peak (`luhd_peak_dot_i8_avx2`), measured only where the
    /// int8 products of prefill are the AVX2 ones (`Int8ProductKernel.avx2`), else 0.
    var dotI8AVX2 = 0.0
    /// Read bandwidth with `threads` threads, bytes per second.
    var bandwidth = 0.0

    /// Runs of each arithmetic loop; the fastest counts.
    static let peakRuns = 9
    /// Iterations of one run on each thread (12 independent 512-bit operations each).
    static let peakIterations = 16_000_000

    /// The peaks with `threads` threads (best of `peakRuns`, whatever `repeats`) and the read
    /// bandwidth (best of at least 3 and `repeats` per stream count).
    static func measure(threads: Int, repeats: Int) -> MachinePeaks {
        func rate(_ loop: @escaping @Sendable (Int) -> Double) -> Double {
            var best = 0.0
            for _ in 0..<max(peakRuns, repeats) {
                // Each thread's operations per second of its own CPU time.
                let rates = UnsafeMutablePointer<Double>.allocate(capacity: threads)
                defer { rates.deallocate() }
                let r = SendablePointer(rates)
                parallelFor(threads, threads: threads) {
                    let c0 = threadCPUSeconds()
                    let ops = loop(peakIterations)
                    r.p[$0] = ops / max(threadCPUSeconds() - c0, 1e-9)
                }
                best = max(best, (0..<threads).reduce(0) { $0 + rates[$1] })
            }
            return best
        }
        var p = MachinePeaks()
        p.fmaF32 = rate { luhd_peak_fma_f32($0) }
        p.fmaF16 = rate { luhd_peak_fma_f16($0) }
        p.dotBF16 = rate { luhd_peak_dot_bf16($0) }
        p.dotI8 = rate { luhd_peak_dot_i8($0) }
        if Int8ProductKernel.host == .avx2, Int8ProductKernel.avx2.isAvailable { p.dotI8AVX2 = rate { luhd_peak_dot_i8_avx2($0) } }
        // 1 GiB, best of at least 3 per stream count: one short read of 256 MiB measured 33.5 GB/s
        // where the `quant` benchmark's best of many over 1 GiB read 59.9 minutes later.
        p.bandwidth = ReadBandwidth(bytes: 1 << 30).measure(threads: threads, repeats: max(3, repeats))
        return p
    }

    /// How the peaks are measured, for the tables' text.
    static var method: String {
        "best of \(peakRuns) runs of \(peakIterations / 1_000_000) M iterations on each thread (about 50 ms a run), each thread timed by its own CPU time"
    }

    var line: String {
        func g(_ x: Double) -> String { x > 0 ? fmt(x / 1e9, 0) : "n/a" }
        let avx2 = dotI8AVX2 > 0 ? "int8 AVX2 (vpmaddubsw) \(g(dotI8AVX2)) GOP/s, " : ""
        return "float32 FMA \(g(fmaF32)) GFLOP/s, FP16 FMA \(g(fmaF16)) GFLOP/s, BF16 dot \(g(dotBF16)) GFLOP/s, "
            + "int8 VNNI \(g(dotI8)) GOP/s, \(avx2)read bandwidth \(fmt(bandwidth / 1e9)) GB/s"
    }

    /// The int8 peak of the product prefill runs on this CPU (`Int8ProductKernel.host`): VNNI's
    /// `vpdpbusd` or AVX2's `vpmaddubsw`; 0 when neither was measured.
    var int8: (value: Double, name: String) {
        Int8ProductKernel.host == .avx2 && dotI8AVX2 > 0 ? (dotI8AVX2, "int8 AVX2") : (dotI8, "int8 VNNI")
    }
}

/// One configuration of the model the benchmark asks the photo question with.
private struct E2EVariant {
    /// LLM weights: nil = the checkpoint's BF16, else `ModelQuantizer`'s copy (LM head included).
    var format: QuantFormat?
    /// LLM weights from a GGUF file instead: llama.cpp's `llama-quantize` type of the checkpoint's
    /// LLM ("Q4_K_M"), named in the directory's config.json (`llm_gguf`).
    var gguf: String? = nil
    var precision: Precision
    var kv: KVCacheType

    var weightsName: String { gguf.map { "\($0) (GGUF)" } ?? format?.rawValue ?? "BF16" }

    /// Bytes of one LLM weight as stored (BF16 2; a block format's block bytes per element); a
    /// GGUF variant's come from its file (`E2EVariant.ggufBytesPerWeight`).
    var bytesPerWeight: Double {
        guard let format else { return 2 }
        return Double(format.blockBytes) / Double(format.blockElements)
    }

    /// Mean bytes per weight of a GGUF LLM's decoder and output matrices (Q4_K_M mixes Q4_K and
    /// Q6_K), what a decoded token reads.
    static func ggufBytesPerWeight(_ path: String) throws -> Double {
        let file = try GGUFFile(path: path)
        let read = file.tensors.filter { $0.shape.count == 2 && $0.name != "token_embd.weight" }
        return Double(read.reduce(0) { $0 + $1.byteCount }) / Double(max(1, read.reduce(0) { $0 + $1.elementCount }))
    }

    /// The model directory of this variant for the BF16 checkpoint `dir`: `dir` itself, its
    /// `ModelQuantizer` copy, or (GGUF) a directory of links to `dir`'s files whose config.json
    /// names llama-quantize's file of the LLM (a hard link: `llm_gguf` may not lead outside its
    /// directory). An existing complete directory or quantized file is reused (the BF16 GGUF it
    /// was quantized from is then not needed); nil when neither exists and llama.cpp's tools are
    /// not available.
    func modelDirectory(checkpoint dir: String, threads: Int) throws -> String? {
        if let format { return try quantizedCopy(of: dir, format: format) }
        guard let gguf else { return dir }
        let out = LlamaCpp.ggufModelDirectory(of: dir, type: gguf)
        if fileExists(out + "/.complete") { return out }
        var quantized = LlamaCpp.quantizedLLMPath(of: dir, type: gguf)
        if !fileExists(quantized) {
            guard LlamaCpp.isAvailable, let bf16 = LlamaCpp.bf16GGUF(of: dir, at: LlamaCpp.quantizedLLMPath(of: dir, type: "BF16")),
                  let made = LlamaCpp.quantized(bf16, type: gguf, threads: threads) else { return nil }
            quantized = made
        }
        _ = system("rm -rf " + shellQuoted(out))
        let configKey = "\"" + GGUFLanguageModel.configKey + "\": \"llm.gguf\",\n"
        let script = """
            mkdir -p \(shellQuoted(out)) && cd \(shellQuoted(out)) && for f in \(shellQuoted(dir))/*; do \
            [ "$(basename "$f")" = config.json ] || ln -s "$f" .; done && ln \(shellQuoted(quantized)) llm.gguf && \
            { head -c 2 \(shellQuoted(dir + "/config.json")); printf '%s' \(shellQuoted(configKey)); \
            tail -c +3 \(shellQuoted(dir + "/config.json")); } > config.json && touch .complete
            """
        guard system(script) == 0 else { throw LlavaError(.io, "cannot make the GGUF model directory \(out)") }
        return out
    }

    /// The peak prefill's matrix products can reach: float32 FMA for exact BF16 weights (widened to
    /// float32), the bf16 dot peak for fast BF16 where fast picks bf16 products, the int8 peak of
    /// the CPU's int8 product (VNNI, else AVX2) for the quantized formats (int8 activations).
    /// Operations per second.
    func prefillPeak(_ peaks: MachinePeaks) -> (value: Double, name: String) {
        if format != nil || gguf != nil, peaks.int8.value > 0 { return peaks.int8 }
        if precision == .fast, precision.matrixArithmetic() == .bfloat16, peaks.dotBF16 > 0 { return (peaks.dotBF16, "bf16 dot") }
        return (peaks.fmaF32, "float32 FMA")
    }

    /// Exact BF16 with each KV cache type, fast BF16, and the fast quantized LLMs with the default
    /// 16-bit cache (llama.cpp's Q4_K_M GGUF when its tools are there, `LlamaCpp.isAvailable`).
    static let all: [E2EVariant] = [
        E2EVariant(format: nil, precision: .exact, kv: .float32),
        E2EVariant(format: nil, precision: .exact, kv: .float16),
        E2EVariant(format: nil, precision: .fast, kv: .float16),
        E2EVariant(format: .q8_0, precision: .fast, kv: .float16),
        E2EVariant(format: .q4_0, precision: .fast, kv: .float16),
        E2EVariant(format: nil, gguf: "Q4_K_M", precision: .fast, kv: .float16),
    ]
}

/// What the turns of one photo and variant measured: the images' best time, and the best
/// full-depth prefill and per-token decode time over the turns.
private struct TurnFigures {
    var views = 0, positions = 0
    /// Seconds: images (best of the encodes), prefill at full depth, decode of one token at
    /// full depth (each the best over the turns of its estimate, `E2EClock.fullDepth`).
    var images = Double.infinity, prefill = Double.infinity, perToken = Double.infinity
    /// The 1-minute load average before the first turn and after the last (other work on the
    /// machine skews the figures).
    var load = ""
}

/// Time inside the decoder layers of one chat turn, split into prefill and decode: the session
/// carries `clock` (`ChatSession.stageClock`), whose layer steps (`DecoderStage.insideLayers`)
/// are summed, and `stage` (the session's `onStage`) notes the sum when decoding starts.
private final class E2EClock: @unchecked Sendable {
    let clock = StageClock()
    /// Seconds inside the layers when decoding started (the prefill's).
    private(set) var prefillLayers = 0.0

    var insideLayers: Double {
        clock.entries.reduce(0) { DecoderStage.insideLayers.contains($1.name) ? $0 + $1.seconds : $0 }
    }

    func stage(_ stage: ChatStage) { if stage == .decoding { prefillLayers = insideLayers } }

    func reset() {
        clock.reset()
        prefillLayers = 0
    }

    /// `measured` seconds of a stage run at `layers` of `full` layers, `inLayers` of them inside
    /// the layers, at full depth: measured + inLayers × (full − layers) / layers (exact when
    /// layers = full). Embeddings, the output head, sampling and the turn's other fixed costs
    /// are counted once, as measured.
    static func fullDepth(_ measured: Double, inLayers: Double, layers: Int, full: Int) -> Double {
        measured + inLayers * Double(full - layers) / Double(layers)
    }
}

private func runE2EBenchmark(_ options: BenchOptions) throws -> String {
    let threads = ComputeContext.defaultThreads
    // Vicuna-7B and Qwen2-7B layouts (--llm-models picks; --quick: Vicuna-7B only).
    let models: [SyntheticCheckpoint.LanguageModel] = options.llmModels.map { $0.compactMap(SyntheticCheckpoint.LanguageModel.init(rawValue:)) }
        ?? (options.quick ? [.vicuna7B] : [.vicuna7B, .qwen2_7B])
    // Two photos (one with --quick).
    let photos = ["images/grace_hopper.jpg", "images/examples.jpg"].prefix(options.quick ? 1 : 2)
        .map { SyntheticCheckpoint.testAssets + "/" + $0 }.filter(fileExists)
    guard !photos.isEmpty else { return "not run: no photos in the test assets (set LLAVAUHD_TEST_ASSETS)\n" }
    guard !models.isEmpty else { return "not run: --llm-models names none of vicuna-7b, qwen2-7b\n" }
    // --llm-weights BF16,Q8_0,Q4_0,Q4_K_M picks the LLM weights (default: all).
    let variants = E2EVariant.all.filter { v in options.llmWeights.map { $0.contains(v.gguf ?? v.format?.rawValue ?? "BF16") } ?? true }
    let answerTokens = 16
    // Turns per photo and variant (the first encodes the image, the others take it from the
    // session's image cache), and encodes of each image (the first turn's and encode-only ones).
    let turns = max(3, options.repetitions(5)), imageRuns = max(2, options.repetitions(3))

    var tables = ""
    var residentAfter = 0
    for model in models {
        let fullDepth = model.layers
        let depth = min(max(1, options.layers ?? 2), fullDepth)
        // figures[photo][variant]; bytes per LLM weight of each variant that ran.
        var figures: [[TurnFigures?]] = Array(repeating: Array(repeating: nil, count: variants.count), count: photos.count)
        var bytesPerWeight: [Int: Double] = [:]
        let checkpoint = SyntheticCheckpoint(languageModel: model, multimodal: true, layers: depth)
        let (dir, written, seconds) = try checkpoint.ensure(in: SyntheticCheckpoint.benchDirectory())
        if written { print("wrote \(dir) (\(megabytes(checkpoint.totalBytes))) in \(fmt(seconds)) s") }
        guard SyntheticCheckpoint.installTestTokenizer(in: dir, for: model) else {
            return "not run: no \(model.displayName) tokenizer in the test assets (set LLAVAUHD_TEST_ASSETS)\n"
        }
        for (v, variant) in variants.enumerated() {
            guard let modelDirectory = try variant.modelDirectory(checkpoint: dir, threads: threads) else {
                print("\(model.displayName) \(variant.weightsName): skipped (needs llama.cpp's llama-quantize in $LLAVAUHD_LLAMA_CPP and Python's gguf)")
                continue
            }
            bytesPerWeight[v] = try variant.gguf != nil
                ? E2EVariant.ggufBytesPerWeight(modelDirectory + "/llm.gguf") : variant.bytesPerWeight
            // No prefix cache: every turn's prefill is computed, not copied from the last turn.
            let llava = try LlavaModel(path: modelDirectory, options: .init(threads: threads,
                                                                        matrixArithmetic: variant.precision.matrixArithmetic(),
                                                                        visionArithmetic: variant.precision.visionArithmetic(),
                                                                        prefixCacheBytes: 0))
            for (i, path) in photos.enumerated() {
                let image = try ImageDecoder.decodeFile(path)
                let name = path.split(separator: "/").last ?? ""
                var f = TurnFigures()
                f.load = loadAverage()
                f.views = try llava.plan(for: image).views.count
                let clock = E2EClock()
                var sessionOptions = ChatSession.Options()
                sessionOptions.kvCacheType = variant.kv
                sessionOptions.onStage = { clock.stage($0) }
                let session = try ChatSession(model: llava, options: sessionOptions)
                session.stageClock = clock.clock
                var parameters = ChatParameters()
                parameters.generation = GenerationParameters(maxNewTokens: answerTokens, stopTokenIds: [])
                for turn in 0..<turns {
                    session.reset()  // the image-embedding cache is kept
                    clock.reset()
                    let reply = try session.chat("<image>\nWhat is in this photo?", images: [image], parameters: parameters)
                    let t = reply.timings
                    if t.encodedImages > 0 { f.images = min(f.images, t.imageEncoding) }
                    f.positions = reply.promptPositions
                    let prefill = E2EClock.fullDepth(t.prefill, inLayers: clock.prefillLayers, layers: depth, full: fullDepth)
                    let decode = E2EClock.fullDepth(t.decode, inLayers: clock.insideLayers - clock.prefillLayers,
                                                    layers: depth, full: fullDepth)
                    let tokens = Double(max(1, reply.tokens.count))
                    f.prefill = min(f.prefill, prefill)
                    f.perToken = min(f.perToken, decode / tokens)
                    print("\(model.displayName), \(depth) layers, \(name), \(variant.weightsName) \(variant.precision.name) KV \(variant.kv), "
                          + "turn \(turn + 1)/\(turns): \(f.positions) positions, images \(t.encodedImages > 0 ? fmt(t.imageEncoding) + " s" : "cached"), "
                          + "prefill \(fmt(t.prefill)) s (\(fmt(clock.prefillLayers)) s in layers; \(fmt(prefill)) s at \(fullDepth)), "
                          + "decode \(fmt(tokens / max(t.decode, 1e-9), 2)) tok/s (\(fmt(tokens / decode, 2)) at \(fullDepth)) (load \(loadAverage()))")
                }
                // The image's other encodes: a session that neither keeps nor looks up images.
                var encodeOnly = ChatSession.Options()
                encodeOnly.imageCacheCapacity = 0
                let encoder = try ChatSession(model: llava, options: encodeOnly)
                for _ in 1..<imageRuns {
                    let t = try encoder.setConversation([.user("What is in this photo?", images: 1)], images: [image])
                    f.images = min(f.images, t.imageEncoding)
                    print("\(model.displayName), \(name), \(variant.weightsName) \(variant.precision.name): images \(fmt(t.imageEncoding)) s")
                }
                f.load += " → " + loadAverage()
                figures[i][v] = f
            }
            residentAfter = max(residentAfter, residentBytes())
        }
        // Peaks and bandwidth measured after each model's turns, so the bounds are of this
        // stretch of the run.
        let peaks = MachinePeaks.measure(threads: threads, repeats: options.repetitions(3))

        // Weights one decoded token reads at full depth: every layer's matrices and the LM head
        // (read at the variant's bytes per weight), plus the KV cache up to the prompt's end.
        // Prefill's matrix work is 2 operations per layer weight and position (attention not
        // counted).
        let c = SyntheticCheckpoint(languageModel: model, multimodal: true).languageConfig
        let qWidth = c.headCount * c.headDim, kvWidth = c.kvHeadCount * c.headDim
        let layerWeights = 2 * c.hiddenSize * qWidth + 2 * c.hiddenSize * kvWidth + 3 * c.hiddenSize * c.intermediateSize
        let decodedWeights = fullDepth * layerWeights + c.vocabSize * c.hiddenSize
        let how = depth == fullDepth
            ? "measured at full depth"
            : "measured at \(depth) layer(s); prefill and decode at \(fullDepth) layers = measured time + time inside the decoder layers "
            + "(the layers' steps timed by the session's `StageClock`) × (\(fullDepth) − \(depth)) / \(depth)"

        tables += """

        **\(model.displayName)** layout (\(fullDepth) layers; \(how); best of \(turns) turns per row, the first encoding the image and \
        the others taking it from the session's image cache; images best of \(imageRuns) encodes). \
        Machine peaks measured after its turns (\(MachinePeaks.method)): \(peaks.line). Prefill share = 2 × \(fmt(Double(fullDepth * layerWeights) / 1e9, 2)) G \
        layer weights × positions / prefill time; decode bound = read bandwidth / (\(fmt(Double(decodedWeights) / 1e9, 2)) G weights × \
        bytes per weight + the KV cache up to the prompt's end).

        | photo | views | prompt positions | LLM weights | precision | KV cache | images | prefill (\(fullDepth) layers) | prefill share of peak | time to first token | decode tok/s | bound tok/s | share of bound | KV bytes / token | load (first turn → last) |
        |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|

        """
        for (i, path) in photos.enumerated() {
            for (v, variant) in variants.enumerated() {
                guard let f = figures[i][v], let weightBytes = bytesPerWeight[v] else { continue }
                let kvBytes = 2 * fullDepth * kvWidth * variant.kv.bytesPerValue * f.positions
                let bound = peaks.bandwidth / (Double(decodedWeights) * weightBytes + Double(kvBytes))
                let peak = variant.prefillPeak(peaks)
                let prefillShare = 2 * Double(fullDepth * layerWeights) * Double(f.positions) / f.prefill / peak.value
                let ttft = f.images + f.prefill + f.perToken
                tables += "| \(path.split(separator: "/").last ?? "") | \(f.views) | \(f.positions) | \(variant.weightsName) "
                    + "| \(variant.precision.name) | \(variant.kv) | \(fmt(f.images)) s "
                    + "| \(fmt(f.prefill)) s (\(fmt(Double(f.positions) / f.prefill)) tok/s) | \(fmt(100 * prefillShare, 0)) % of \(peak.name) "
                    + "| \(fmt(ttft)) s | \(fmt(1 / f.perToken, 2)) "
                    + "| \(fmt(bound, 2)) | \(fmt(100 / f.perToken / bound, 0)) % | \(megabytes(kvBytes)) | \(f.load) |\n"
            }
        }
    }
    let peakResident = peakResidentBytes()

    var md = """
    \(machineLine()); \(threads) threads. \(CPUProfile.current).

    Synthetic LLaVA-UHD v2 directories (BF16 weights, real shapes and names) with the test assets' \
    tokenizers (Vicuna's SentencePiece, Qwen2's byte-level BPE); one turn "<image> What is in this photo?" \
    with \(answerTokens) greedy tokens (end of sequence ignored). Weights: BF16 as written, `ModelQuantizer`'s \
    Q8_0 / Q4_0 copy of the LLM (LM head included; vision stays BF16), or llama.cpp's `llama-quantize` Q4_K_M \
    of the LLM read from a GGUF file (`llm_gguf`; only when $LLAVAUHD_LLAMA_CPP has llama-quantize and Python \
    has `gguf`); precision `exact` (float32 products) or `fast` (on this CPU: vision \(Precision.fast.visionArithmetic().rawValue), \
    LLM prefill \(Precision.fast.matrixArithmetic().rawValue) for BF16 weights, int8 activations for the quantized \
    formats). The prefill share is against the peak its products can reach (float32 FMA for exact, bf16 dot \
    for fast bf16, int8 VNNI for the quantized formats; attention not counted). Resident memory after the \
    turns \(megabytes(residentAfter)), peak \(megabytes(peakResident)) (whole process, at the depth measured).

    """
    md += tables
    md += """

    Below full depth the figures are extrapolated from one depth by the time inside its decoder layers (the \
    rest of a turn, embeddings, output head and sampling, is counted once), best of the turns, so a slow turn \
    does not enter and noise is not multiplied by a line through two depths. Full depth, no extrapolation (14.4 GB \
    (Vicuna-7B) or 15.2 GB (Qwen2-7B) written once under $LLAVAUHD_BENCH_DIR or /tmp/llavauhd-bench): \
    `swift run -c release llavauhd-bench e2e --layers 32` (Qwen2-7B has 28).

    """
    return md
}
