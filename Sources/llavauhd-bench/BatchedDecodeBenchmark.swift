#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD
import Synchronization

/// `batch-decode`: aggregate decode speed of 1, 2 and 4 sessions decoding at the same time on
/// one model (each on its own thread, one `KVCache` each), with batched decoding
/// (`DecodeBatcher`, the default) and, for 4 sessions, with it off (`maxDecodeBatch` 1: the
/// sessions contend for the cores and each streams the weights itself). Vicuna-7B shapes on
/// synthetic weights (`SyntheticCheckpoint`), BF16 and `ModelQuantizer`'s Q8_0 and Q4_0, at
/// `--layers` depth (default 2 of 32, as `llm`; embeddings and lm_head at full size). Each
/// session has a prompt of its own length (`promptTokens` + 16·i) evaluated before the clock
/// starts; then all threads start together and each decodes `decodeTokens` greedy tokens.
/// Aggregate tokens/s = sessions × tokens / wall time until the last finishes, best of N. KV
/// caches of `--kv` (default the sessions' type, `KVCacheType.sessionDefault`): attention reads
/// every session's own cache, the part of a pass that batching does not share.
var batchedDecodeBenchmark: Benchmark {
    Benchmark(name: "batch-decode", summary: "aggregate decode tokens/s of 1, 2, 4 concurrent sessions (batched decoding) at Vicuna-7B shapes",
              run: runBatchedDecodeBenchmark)
}

private let promptTokens = 64
private let decodeTokens = 64

private func runBatchedDecodeBenchmark(_ options: BenchOptions) throws -> String {
    try BLAS.load()
    let threads = ComputeContext.defaultThreads
    let reps = options.repetitions(4)
    let kv = options.kvCache ?? .sessionDefault
    let model = SyntheticCheckpoint.LanguageModel.vicuna7B
    let checkpoint = SyntheticCheckpoint(languageModel: model, multimodal: false, layers: options.layers ?? 2)
    let config = checkpoint.languageConfig
    let (dir, borrowed) = try languageCheckpointDirectory(checkpoint)
    let loadBefore = loadAverage()
    print("batch-decode: \(model.displayName), \(checkpoint.layerCount) of \(model.layers) layers in \(dir); load \(loadBefore)")

    func wanted(_ format: String) -> Bool { options.llmWeights?.contains(format) ?? true }
    var variants: [(format: String, directory: String)] = wanted("BF16") ? [("BF16", dir)] : []
    for format in [QuantFormat.q8_0, .q4_0] where wanted(format.rawValue) {
        let copy = dir + "-" + format.lowercaseName
        if borrowed, !fileExists(copy + "/.complete") {
            print("batch-decode: \(format.rawValue): no complete copy \(copy); not measured (not written next to a borrowed checkpoint)")
            continue
        }
        variants.append((format.rawValue, try quantizedCopy(of: dir, format: format)))
    }
    // At full depth one decoder per format (the interleaved copies of two would not fit in memory
    // beside the page cache): no "batching off" configuration.
    let compareUnbatched = checkpoint.layerCount < model.layers

    let pipes = PipeRates.measure()
    print("batch-decode: one core, instructions/s: vpdpbusd \(fmt(pipes.dot / 1e9, 2)) G, FMA \(fmt(pipes.fma / 1e9, 2)) G, "
          + "interleaved \(fmt(pipes.mixed / 1e9, 2)) G")
    var rows = "", kernelRows = ""
    for v in variants {
        let weights = try WeightStore(directory: v.directory)
        // MLP matrices (11008 × 4096: gate and up of layers 0 and 1) through the rowwise products the
        // passes use, for 1 to 8 rows, in the layout the decoder reads (with the row-interleaved copy
        // `TransformerDecoder` makes for the int8 VNNI kernels); each timed product reads a matrix the
        // 3 products before it did not, more bytes than the L3 cache holds, so that it comes from
        // memory as in a pass.
        let (ms, matrixBytes) = try { () throws -> ([Double], Int) in
            var matrices: [LinearWeight] = []
            for layer in 0..<min(2, checkpoint.layerCount) {
                for name in ["gate_proj", "up_proj"] {
                    let stored = try weights.linearWeight("model.layers.\(layer).mlp.\(name).weight",
                                                          shape: [config.intermediateSize, config.hiddenSize])
                    let matrix: LinearWeight = if case .quantized(let q) = stored { .quantized(q.interleaved(threads: threads)) } else { stored }
                    matrices.append(matrix)
                }
            }
            return (rowwiseProductMilliseconds(matrices, inputs: config.hiddenSize, outputs: config.intermediateSize,
                                               rows: productRows, threads: threads, reps: max(5, 4 * reps)),
                    matrices[0].byteCount)
        }()
        let one = ms[0], two = ms[1], four = ms[2], eight = ms[3]
        let matrixGB = Double(matrixBytes) / 1e9
        let groups = Double(config.intermediateSize * config.hiddenSize / 256)
        let floor = pipes.mixed > 0 ? groups * (PipeRates.slotsPer256Weights[v.format] ?? 0) / pipes.mixed / Double(threads) * 1e3 : 0
        kernelRows += "| \(v.format) | \(fmt(one, 2)) | \(fmt(matrixGB / (one / 1e3))) | \(fmt(two, 2)) | \(fmt(four, 2)) | \(fmt(eight, 2)) | "
            + "\(fmt(four / one, 2)) | \(fmt((four - one) / 3, 2)) | \(floor > 0 ? fmt(floor, 2) : "n/a") | "
            + "\(floor > 0 ? fmt(4 * one / max(one, 4 * floor), 2) + "×" : "n/a") | **\(fmt(4 * one / four, 2))×** |\n"
        print("batch-decode: \(v.format) 11008×4096 rowwise product: "
              + zip(productRows, ms).map { "\($0) row(s) \(fmt($1, 2)) ms" }.joined(separator: ", "))
        let batched = try TransformerDecoder(config: config, weights: weights)
        let gb = Double(batched.weightBytesPerToken) / 1e9
        // The configurations take turns within each repetition, so a burst of load from other
        // processes falls on all of them alike.
        var configurations = [(1, batched), (2, batched), (4, batched)]
        if compareUnbatched { configurations.append((4, try TransformerDecoder(config: config, weights: weights, maxDecodeBatch: 1))) }
        var best = [Double](repeating: 0, count: configurations.count)
        var batchedPasses = [Int](repeating: 0, count: configurations.count), batchedSteps = batchedPasses
        for _ in 0..<reps {
            for (c, (sessions, decoder)) in configurations.enumerated() {
                let start = decoder.decodeBatcher.statistics
                let clock = StageClock()
                let (rate, wall) = try aggregateTokensPerSecond(decoder, sessions: sessions, kv: kv, threads: threads, clock: clock)
                best[c] = max(best[c], rate)
                let end = decoder.decodeBatcher.statistics
                batchedPasses[c] += end.passes - start.passes
                batchedSteps[c] += end.requests - start.requests
                printPassSplit(clock, format: v.format, sessions: sessions, passes: end.passes - start.passes, wall: wall)
            }
        }
        let single = best[0]
        for (c, (sessions, decoder)) in configurations.enumerated() {
            let passes = batchedPasses[c], steps = batchedSteps[c], best = best[c]
            let mode = decoder.decodeBatcher.maxBatch > 1 ? "batched" : "batching off"
            let meanBatch = passes > 0 ? fmt(Double(steps) / Double(passes), 2) : "–"
            print("batch-decode: \(v.format) \(sessions) session(s), \(mode): \(fmt(best, 2)) tok/s, mean batch \(meanBatch)")
            rows += "| \(v.format) | \(fmt(gb, 2)) | \(sessions) | \(mode) | \(fmt(best, 2)) | \(fmt(best / Double(sessions), 2)) | "
                + "**\(fmt(best / single, 2))×** | \(meanBatch) |\n"
        }
    }
    let loadAfter = loadAverage()
    // The benchmark's own compute threads keep the 1-minute load average near their count (and a
    // benchmark run just before leaves its own), so "quiet" allows them plus half a core.
    let quiet = [loadBefore, loadAfter].allSatisfy { (Double($0) ?? .infinity) <= Double(threads) + 0.5 }
    let loadNote = quiet
        ? "about the benchmark's own \(threads) compute threads, the machine otherwise idle"
        : "above the benchmark's own \(threads) compute threads: the machine was shared with other work, so these figures are under load"
    return """
        Vicuna-7B shapes on synthetic weights, \(checkpoint.layerCount) of \(model.layers) decoder layers (+ embeddings and \
        lm_head at full size), \(threads) compute threads per model, KV caches of \(kv) (`--kv`; default the sessions' \
        type). Each session (its own thread and KV \
        cache) first evaluates a prompt of \(promptTokens) + 16·i tokens, untimed; then all sessions decode \(decodeTokens) \
        greedy tokens at the same time. Aggregate = sessions × \(decodeTokens) / wall time until the last session finishes, \
        best of \(reps), the four configurations of a format taking turns. Batched: the default `DecodeBatcher` (each session's tokens and logits equal its serial run, tested in \
        BatchedDecodeTests); batching off: `maxDecodeBatch` 1. Speed-up: aggregate / 1 session's. Mean batch = decode steps / \
        passes over the weights. Load average \(loadBefore) at the start, \(loadAfter) at the end: \(loadNote).

        | weights | GB read per pass | sessions | mode | aggregate tok/s | per session tok/s | speed-up | mean batch |
        |---|---|---|---|---|---|---|---|
        \(rows)
        What bounds the speed-up: the rows of a pass are not free once the weights are read. \
        To give each session bit for bit its serial result, every row goes through exactly the single-row kernel's \
        arithmetic (BF16: one FMA per weight and row after the weight is widened once; Q8_0 and Q4_0 with the int8 VNNI \
        kernels: per 256 weights and row, 4 `vpdpbusd` that leave each block's exact integer dot product (the format's \
        offset included) in 8 lanes, one conversion, one 8-lane scale product and one 8-lane FMA; \
        quant_vnni_common.h), the weight bytes loaded and unpacked once for up to 4 rows of x (quant_repacked_vnni.c: the 4 \
        weight rows of an interleaved block run together on one stream, with 2-4 rows of x two weight rows at a time sharing \
        each load of x). MLP matrices \
        (11008×4096) in the layout the decoder reads (the interleaved copy for Q8_0 and Q4_0), \(threads) threads, \
        `MatMul.linear(…, rowwise: true)` as the passes call it, taken in turn from gate and up of two layers so that each \
        product reads its weights from memory (together larger than the L3 cache), best of N in this run:

        | weights | 1 row ms | 1 row GB/s | 2 rows ms | 4 rows ms | 8 rows ms | 4 rows / 1 row | ms per extra row (of 4) | arithmetic floor per row ms | 4 × 1 row / max(1 row, 4 × floor) | bound on the 4-session speed-up (4 × 1 row / 4 rows) |
        |---|---|---|---|---|---|---|---|---|---|---|
        \(kernelRows)
        One row is bound by memory (the weight bytes at the read bandwidth); each further row adds its arithmetic, which \
        the column "ms per extra row" measures. A pass of B rows costs about max(memory, B × arithmetic), so the speed-up of \
        B sessions is bounded by B × (1 row) / (B rows). \(pipes.line) The arithmetic floor of a row is therefore its \
        multiply-class instructions at the interleaved rate, per 256 weights: BF16 16 FMAs; Q8_0 and Q4_0 5 (4 `vpdpbusd`, \
        a 256-bit multiply and a 256-bit FMA, each counting half); × 11008·4096/256 groups / \(threads) threads. These \
        are the operations that make each row bit for bit its serial result. Under load (other processes taking the \
        cores) the arithmetic gets slower while the memory does not, which lowers the quantized bounds, while the \
        one-session figure, the denominator, suffers most from the load: speed-ups measured under load are not \
        valid.

        """
}

/// Rows of x of the rowwise product timings.
private let productRows = [1, 2, 4, 8]

/// Milliseconds of one rowwise product of a matrix of `matrices` (each `[outputs, inputs]`) for
/// each count in `rows`, best of `reps`: the timed products take the matrices in turn, so that
/// with matrices larger together than the last-level cache each product reads its weights from
/// memory, as the passes of a deep model do.
private func rowwiseProductMilliseconds(_ matrices: [LinearWeight], inputs: Int, outputs: Int, rows: [Int], threads: Int,
                                        reps: Int) -> [Double] {
    let most = rows.max() ?? 1
    var random = SplitMix(seed: 5)
    let x = (0..<(most * inputs)).map { _ in Float(Int(random.next() % 2001) - 1000) / 1000 }
    var out = [Float](repeating: 0, count: most * outputs)
    let context = ComputeContext(threads: threads)
    var next = 0
    func time(_ rows: Int) -> Double {
        let w = matrices[next % matrices.count]
        next += 1
        return x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                1e3 * bestOf(1) {
                    MatMul.linear(xb.baseAddress!, rows: rows, weight: w, into: ob.baseAddress!, rowwise: true, context: context)
                }
            }
        }
    }
    // The counts in turn, so all see the same load.
    var best = [Double](repeating: .infinity, count: rows.count)
    for _ in 0..<reps {
        for (i, n) in rows.enumerated() { best[i] = min(best[i], time(n)) }
    }
    return best
}

/// The directory of the LLM-only `checkpoint`, written when missing, unless a complete
/// multimodal checkpoint of the same depth is already there (its language model tensors are the
/// same; the full-depth ones take 13-15 GB): then that one, `borrowed`, and nothing is written.
private func languageCheckpointDirectory(_ checkpoint: SyntheticCheckpoint) throws -> (path: String, borrowed: Bool) {
    let parent = SyntheticCheckpoint.benchDirectory()
    let multimodal = SyntheticCheckpoint(languageModel: checkpoint.languageModel, multimodal: true, layers: checkpoint.layers)
    if !checkpoint.isComplete(in: parent), multimodal.isComplete(in: parent) { return (parent + "/" + multimodal.layoutName, true) }
    return (try checkpoint.ensure(in: parent).path, false)
}

/// Prints where the passes of one configuration went: the wall time per pass of each step of the
/// decoder (`StageClock`, timed on the thread leading each pass; one session's steps run the same
/// way, unbatched), and the rest of the wall time per pass (the batcher's gathering and hand-off,
/// the sessions' sampling, the embedding).
private func printPassSplit(_ clock: StageClock, format: String, sessions: Int, passes: Int, wall: Double) {
    guard passes > 0 else { return }
    let perPass = { (s: Double) in fmt(1e3 * s / Double(passes), 1) }
    let timed = clock.entries.reduce(0) { $0 + $1.seconds }
    print("batch-decode: \(format) \(sessions) session(s), ms per pass (\(passes) passes): "
          + clock.entries.map { "\($0.name) \(perPass($0.seconds))" }.joined(separator: ", ")
          + ", outside the steps \(perPass(wall - timed)), whole pass \(perPass(wall))")
}

/// Starts `sessions` threads, each with its own cache and prompt, and returns sessions × tokens /
/// the wall time of the decoding, and that wall time. The decoding runs with `clock` in its
/// context (the prompts without).
private func aggregateTokensPerSecond(_ decoder: TransformerDecoder, sessions: Int, kv: KVCacheType, threads: Int,
                                      clock: StageClock) throws -> (tokensPerSecond: Double, seconds: Double) {
    let config = decoder.config
    let context = ComputeContext(threads: threads)
    var timedContext = context
    timedContext.stageClock = clock
    var caches: [KVCache] = [], firstTokens: [Int] = []
    var random = SplitMix(seed: 11)
    for i in 0..<sessions {
        let n = promptTokens + 16 * i
        let cache = try KVCache(config: config, capacity: n + decodeTokens + 1, type: kv)
        let prompt = (0..<n).map { _ in Int(random.next() % UInt64(config.vocabSize)) }
        firstTokens.append(TokenSampler.argmax(try decoder.eval(tokens: prompt, cache: cache, context: context)))
        caches.append(cache)
    }
    let failures = Mutex<[LlavaError]>([])
    let starts = firstTokens, sessionCaches = caches, decodeContext = timedContext
    let t0 = monotonicSeconds()
    runThreads(sessions) { i in
        var token = starts[i]
        do {
            for _ in 0..<decodeTokens {
                token = TokenSampler.argmax(try decoder.eval(tokens: [token], cache: sessionCaches[i], context: decodeContext))
            }
        } catch {
            failures.withLock { $0.append(error as? LlavaError ?? LlavaError(.internal, "\(error)")) }
        }
    }
    let seconds = monotonicSeconds() - t0
    if let error = failures.withLock({ $0.first }) { throw error }
    return (Double(sessions * decodeTokens) / seconds, seconds)
}

/// Runs `body(i)` for i in 0..<count on new POSIX threads (inline when one cannot be made) and
/// waits for all of them.
private func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job: @unchecked Sendable {
        let body: @Sendable (Int) -> Void, index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var handles: [pthread_t] = []
    for i in 0..<count {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(body, i)).toOpaque()
        if pthread_create(&thread, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, job) == 0 {
            handles.append(thread)
        } else {
            Unmanaged<Job>.fromOpaque(job).takeRetainedValue().body(i)
        }
    }
    for t in handles { pthread_join(t, nil) }
}

/// One core's instruction rates (instructions per second, best of 20 short loops of peak_loops.c):
/// `vpdpbusd` alone, `vfmadd231ps` alone and the two interleaved; 0 when the CPU lacks AVX-512
/// VNNI. When the interleaved rate is about either alone, the two share their pipes, and the
/// int8 decode kernels' integer dot products and float multiply-adds of a row add up.
private struct PipeRates {
    var dot = 0.0, fma = 0.0, mixed = 0.0

    /// 512-bit multiply-class instructions (vpdpbusd, FMA, multiply; a 256-bit one counts half)
    /// one row of x costs per 256 weights in the decode kernels (quant_repacked_vnni.c for Q8_0
    /// and Q4_0, the f32 product for BF16), by the format names of the benchmark's rows.
    static let slotsPer256Weights: [String: Double] = ["BF16": 16, "Q8_0": 5, "Q4_0": 5]

    static func measure() -> PipeRates {
        func rate(per instruction: Double, _ loop: (Int) -> Double) -> Double {
            var best = 0.0
            for _ in 0..<20 {
                let t0 = monotonicSeconds()
                let n = loop(1 << 18)
                best = max(best, n / instruction / (monotonicSeconds() - t0))
            }
            return best
        }
        var r = PipeRates()
        r.mixed = rate(per: 1) { luhd_peak_dot_i8_fma_f32($0) }
        guard r.mixed > 0 else { return r }
        r.dot = rate(per: 128) { luhd_peak_dot_i8($0) }
        r.fma = rate(per: 32) { luhd_peak_fma_f32($0) }
        return r
    }

    /// What the rates say, for the report.
    var line: String {
        guard mixed > 0 else { return "(This CPU has no AVX-512 VNNI: the pipe rates were not measured.)" }
        let shared = mixed < 1.3 * max(dot, fma)
        return "One core runs `vpdpbusd` alone at \(fmt(dot / 1e9, 2)) G instructions/s, FMAs alone at \(fmt(fma / 1e9, 2)) G/s "
            + "and the two interleaved at \(fmt(mixed / 1e9, 2)) G/s: "
            + (shared ? "they share their pipes, so a row's integer dot products and multiply-adds add up."
                      : "they run on separate pipes, so the interleaved rate overstates the cost of a row's arithmetic.")
    }
}

