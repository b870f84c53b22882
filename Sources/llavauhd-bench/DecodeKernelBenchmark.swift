#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `decode-kernels`: the kernels one decoded token runs, each alone, against the read bandwidth
/// measured just before and just after it (the larger; `ReadBandwidth` over a buffer of the same
/// size): one row of x against 4096×11008 weight matrices (a Vicuna-7B down_proj; as many as fill
/// `workingSet`, far beyond the caches) in BF16 (`MatMul.linear` on the stored bytes, float32
/// products) and Q8_0 / Q4_0 / Q4_K / Q6_K (the preferred kernels on the copy made at load where
/// the format has one, as decoding runs them: row-interleaved for int8 VNNI, scale-grouped for
/// int8 AVX2), and decode attention (one query
/// row, Vicuna-7B's 32 heads of 128) over a 16-bit and a float32 KV cache at two context lengths,
/// over `attentionLayers` layers' caches so the cache streams from memory too. A kernel at the
/// bandwidth reads its bytes as fast as a plain read loop does; decode speed is the sum of these
/// (plus the small per-token steps between them). Options: `--llm-weights BF16,Q8_0` only those
/// matrix-vector formats (`none`: no matrix-vector rows), `--kv f16` only that cache's attention,
/// `--context N` attention at N positions only.
var decodeKernelBenchmark: Benchmark {
    Benchmark(name: "decode-kernels",
              summary: "one-row decode kernels (BF16, Q8_0, Q4_0, Q4_K, Q6_K matvec; 16-bit KV attention) vs read bandwidth") { options in
        try DecodeKernelBench(options: options).run()
    }
}

private struct DecodeKernelBench {
    let options: BenchOptions
    let workingSet = 512 << 20
    let contexts = [1000, 2500]
    let attentionLayers = 4

    struct Row {
        let kernel: String
        let threads: Int
        let bytes: Int
        let seconds: Double
        let bandwidth: Double
        /// One thread: the best run's CPU seconds of the calling thread and the read bandwidth per
        /// CPU second (figures that time slices given to other processes do not change).
        var cpuSeconds = 0.0, cpuBandwidth = 0.0
        var gbps: Double { Double(bytes) / seconds / 1e9 }
        var share: Double { Double(bytes) / seconds / bandwidth }
        var cpuShare: Double { cpuSeconds > 0 ? Double(bytes) / cpuSeconds / cpuBandwidth : 0 }
    }

    /// The least CPU time of the calling thread over `n` runs of `body` (run on this thread).
    static func leastCPU(_ n: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, n) {
            let c0 = threadCPUSeconds()
            body()
            best = min(best, threadCPUSeconds() - c0)
        }
        return best
    }

    func run() throws -> String {
        let reps = options.repetitions(6)
        let allThreads = ComputeContext.defaultThreads
        let threadCounts = allThreads > 1 ? [allThreads, 1] : [1]
        let probe = ReadBandwidth(bytes: workingSet)
        var rows: [Row] = []
        // One thread's read of the probe's buffer on the calling thread, so its CPU time is this
        // thread's; the best of the probe's stream counts, as `ReadBandwidth.measure`.
        func cpuProbe() -> Double {
            ReadBandwidth.streamCounts.map { streams in
                Double(probe.bytes) / Self.leastCPU(2) { _ = luhd_peak_read_streams(probe.raw, UInt(probe.bytes), Int32(streams)) }
            }.max()!
        }
        func timed(_ kernel: String, bytes: Int, threads: Int, _ body: () -> Void) {
            let before = probe.measure(threads: threads, repeats: 2)
            let seconds = bestOf(reps, body)
            let bandwidth = max(before, probe.measure(threads: threads, repeats: 2))
            var row = Row(kernel: kernel, threads: threads, bytes: bytes, seconds: seconds, bandwidth: bandwidth)
            if threads == 1 {
                let cpuBefore = cpuProbe()
                row.cpuSeconds = Self.leastCPU(reps, body)
                row.cpuBandwidth = max(cpuBefore, cpuProbe())
            }
            rows.append(row)
            print("decode-kernels: \(kernel), \(threads) thread(s): \(fmt(row.gbps)) GB/s, \(fmt(100 * row.share, 0)) % of "
                  + "\(fmt(bandwidth / 1e9)) GB/s" + (threads == 1 ? "; by CPU time \(fmt(100 * row.cpuShare, 0)) %" : "")
                  + " (load \(loadAverage()))")
        }

        // Matrix-vector products: the quant benchmark's matrices and fill.
        let shape = QuantBench(options: options, workingSet: workingSet)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: workingSet + 4096, alignment: 4096)
        // In huge pages, as a loaded model's decode weights are (`InterleavingDecoderSource`).
        luhd_advise_huge_pages(buffer, workingSet)
        defer { buffer.deallocate() }
        var rng = SplitMix(seed: 5)
        let x = (0..<shape.cols).map { _ in rng.nextFloat() - 0.5 }
        var y = [Float](repeating: 0, count: shape.rows)
        for format in [QuantFormat.bf16, .q8_0, .q4_0, .q4_K, .q6_K] where options.llmWeights?.contains(format.rawValue) ?? true {
            let count = shape.fill(buffer, format: format)
            let matrixBytes = shape.rows * format.rowBytes(columns: shape.cols)!
            let weights: [LinearWeight] = try (0..<count).map { i in
                let data = UnsafeRawPointer(buffer + i * matrixBytes)
                if format == .bf16 {
                    return .dense(TensorView(name: "w\(i)", dtype: .bf16, shape: [shape.rows, shape.cols], data: data, owner: BenchOwner()))
                }
                let q = try QuantizedMatrix(name: "w\(i)", format: format, rows: shape.rows, columns: shape.cols, data: data, owner: nil)
                return .quantized(q.canInterleave ? q.interleaved(threads: allThreads) : q.grouped(threads: allThreads))
            }
            let layout: String
            if case .quantized(let q) = weights[0] {
                layout = switch q.interleavedLayout {
                case .rowBlocks: ", interleaved"
                case .scaleGroups: ", scale-grouped"
                case nil: ", stored layout"
                }
            } else {
                layout = ""
            }
            for threads in threadCounts {
                let context = ComputeContext(threads: threads)
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        timed("\(format.rawValue) matvec\(layout)", bytes: count * matrixBytes, threads: threads) {
                            for w in weights { MatMul.linear(xb.baseAddress!, rows: 1, weight: w, into: yb.baseAddress!, context: context) }
                        }
                    }
                }
            }
        }

        // Decode attention over `attentionLayers` layers' caches.
        let config = SyntheticCheckpoint(languageModel: .vicuna7B, multimodal: false, layers: attentionLayers).languageConfig
        let qWidth = config.headCount * config.headDim, kvWidth = config.kvHeadCount * config.headDim
        let query = (0..<qWidth).map { _ in rng.nextFloat() - 0.5 }
        var out = [Float](repeating: 0, count: qWidth)
        let attentionContexts = options.context.map { [$0] } ?? contexts
        for type in options.kvCache.map({ [$0] }) ?? [KVCacheType.float16, .float32] {
            let capacity = attentionContexts.max()! + 1
            let cache = try KVCache(config: config, capacity: capacity, type: type)
            // Pseudo-random keys and values everywhere (no repeated pages, see `ReadBandwidth`).
            let chunk = 256
            var random = [Float](repeating: 0, count: chunk * kvWidth)
            for layer in 0..<attentionLayers {
                for p in stride(from: 0, to: capacity, by: chunk) {
                    let n = min(chunk, capacity - p)
                    for matrix in [cache.keys(layer: layer), cache.values(layer: layer)] {
                        for i in 0..<(n * kvWidth) { random[i] = rng.nextFloat() - 0.5 }
                        random.withUnsafeBufferPointer { matrix.store($0.baseAddress!, rows: n, at: p) }
                    }
                }
            }
            for positions in attentionContexts {
                let bytes = attentionLayers * 2 * (positions + 1) * kvWidth * type.bytesPerValue
                for threads in threadCounts {
                    let context = ComputeContext(threads: threads)
                    query.withUnsafeBufferPointer { q in
                        out.withUnsafeMutableBufferPointer { o in
                            timed("attention, \(type) KV, \(positions) positions", bytes: bytes, threads: threads) {
                                for layer in 0..<attentionLayers {
                                    CausalAttention.compute(queries: q.baseAddress!, rows: 1, queryStride: qWidth, start: positions,
                                                            keys: cache.keys(layer: layer), values: cache.values(layer: layer),
                                                            heads: config.headCount, kvHeads: config.kvHeadCount, headDim: config.headDim,
                                                            out: o.baseAddress!, outStride: qWidth, context: context)
                                }
                            }
                        }
                    }
                }
            }
        }

        var md = """
            The kernels of one decoded token, each alone, best of \(reps): one row of x against \(shape.rows)×\(shape.cols) \
            matrices (as many as fill \(workingSet >> 20) MiB) through `MatMul.linear` (BF16: float32 products on the stored \
            bytes; block formats: \(QuantKernel.preferred(for: .q8_0)) kernels, on the copy made at load where the format has \
            one: row-interleaved for int8 VNNI, scale-grouped for int8 AVX2), and decode attention (one query row, Vicuna-7B's \(config.headCount) heads of \
            \(config.headDim)) over \(attentionLayers) layers' KV caches. Share = bytes read / time / the read bandwidth \
            (\(workingSet >> 20) MiB, same threads) measured just before and just after the row, the larger. With one \
            thread, the same by the thread's CPU time (kernel and read loop alike), which time slices given to other \
            processes do not change: the figure to trust on a loaded machine.

            | kernel | threads | MB read | ms | GB/s | read bandwidth GB/s | share of bandwidth | share by CPU time |
            |---|---|---|---|---|---|---|---|

            """
        for r in rows {
            md += "| \(r.kernel) | \(r.threads) | \(fmt(Double(r.bytes) / 1e6, 0)) | \(fmt(r.seconds * 1e3, 2)) | \(fmt(r.gbps)) "
                + "| \(fmt(r.bandwidth / 1e9)) | **\(fmt(100 * r.share, 0)) %** | \(r.threads == 1 ? fmt(100 * r.cpuShare, 0) + " %" : "–") |\n"
        }
        return md
    }
}
