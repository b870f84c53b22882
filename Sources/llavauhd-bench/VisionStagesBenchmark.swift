#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `vision-stages`: the whole vision stage of one image (view preprocessing, the CLIP
/// ViT-L/14-336 tower to layer −2, VDIM and the Hiwin projector at E = 4096 as in Vicuna-7B,
/// feature_scale_mask 7) on the 7 views of a synthetic 1024×768 image, exact (float32) and fast
/// (what `--precision fast` picks, or int8 where that is float32 but the CPU has an int8 product), part by
/// part: every part's time comes from the library's own `StageClock` and its arithmetic
/// (multiply-adds × 2) from the shapes it ran on, so each row states its share of the peak of
/// its instruction measured in the same run (`MachinePeaks`). Synthetic BF16 weights in
/// temporary safetensors files.
var visionStagesBenchmark: Benchmark {
    Benchmark(name: "vision-stages", summary: "ViT + VDIM + Hiwin part by part, exact and fast, against the peaks",
              run: runVisionStagesBenchmark)
}

/// The parts that run in int8 on the fast path (the others stay float32 there).
private let int8Parts: Set<String> = [
    "ViT q/k/v", "ViT out_proj", "ViT MLP (fc1, quickGELU, fc2)", "Hiwin value heads", "Hiwin attention out_proj", "Hiwin cat_proj", "Hiwin proj",
]

/// One timed run of the whole vision stage.
private struct VisionRun {
    var preprocess = 0.0, vit = 0.0, projector = 0.0
    /// Process CPU time of the ViT and of the projector (`processCPUSeconds`).
    var vitCPU = 0.0, projectorCPU = 0.0
    var parts: [StageClock.Entry] = []
    var total: Double { preprocess + vit + projector }
}

private func runVisionStagesBenchmark(_ options: BenchOptions) throws -> String {
    try BLAS.load()
    let clipConfig = CLIPVisionConfig(hiddenSize: 1024, layerCount: 24, headCount: 16, intermediateSize: 4096)
    let embedDim = 4096
    let clipPath = "/tmp/llavauhd-bench-stages-clip-\(getpid()).safetensors"
    let projectorPath = "/tmp/llavauhd-bench-stages-projector-\(getpid()).safetensors"
    try SyntheticCLIPCheckpoint.write(config: clipConfig, prefix: "vision_model.", to: clipPath)
    defer { unlink(clipPath) }
    try SyntheticProjectorWeights.write(path: projectorPath, embedDim: embedDim, channels: 1024)
    defer { unlink(projectorPath) }
    let clipStore = try WeightStore(paths: [clipPath])
    let projectorStore = try WeightStore(paths: [projectorPath])
    let projectorConfig = ProjectorConfig(kind: .hiwin, featureScaleMask: 7, visionHiddenSize: 1024, embedDim: embedDim)
    // What `--precision fast` picks; where that is float32 (= exact) but the CPU has an int8
    // product, the int8 route is run anyway so that the table shows what it would give.
    let picked = CPUProfile.current.fastVisionArithmetic
    let fast: MatrixArithmetic = picked == .float32 && Int8Product.isAvailable ? .int8 : picked
    let exactStack = (encoder: try CLIPVisionEncoder(store: clipStore, prefix: "vision_model.", config: clipConfig),
                      projector: try projectorConfig.makeProjector(weights: projectorStore))
    let fastStack = (encoder: try CLIPVisionEncoder(store: clipStore, prefix: "vision_model.", config: clipConfig,
                                                    arithmetic: fast, threads: 2),
                     projector: try projectorConfig.makeProjector(weights: projectorStore, arithmetic: fast, threads: 2))

    let image = syntheticImage(width: 1024, height: 768)
    let preprocessor = ViewPreprocessor()
    let plan = try preprocessor.plan(for: image)
    let viewList = plan.views.map { "\($0.size.width)x\($0.size.height)" }.joined(separator: ", ")

    // One `VisionScratch` per stack, as a session keeps one: the calls after the first reuse its buffers.
    let scratches = (exact: VisionScratch(), fast: VisionScratch())
    func run(_ stack: (encoder: CLIPVisionEncoder, projector: any Projector), threads: Int) throws -> VisionRun {
        let clock = StageClock()
        var context = ComputeContext(threads: threads)
        context.stageClock = clock
        context.visionScratch = stack.encoder === exactStack.encoder ? scratches.exact : scratches.fast
        var r = VisionRun()
        var t0 = monotonicSeconds()
        let (_, pixels) = try preprocessor.pixels(of: image, threads: threads)
        r.preprocess = monotonicSeconds() - t0
        t0 = monotonicSeconds()
        var c0 = processCPUSeconds()
        let features = try stack.encoder.encode(pixels, context: context)
        r.vit = monotonicSeconds() - t0
        r.vitCPU = processCPUSeconds() - c0
        var inputs: [ProjectorInput] = []
        for (p, f) in zip(pixels, features) {
            inputs.append(try ProjectorInput(rows: f.rows, columns: f.columns, channels: f.channels, features: f.values,
                                             pixelHeight: p.height, pixelWidth: p.width, pixels: p.values))
        }
        t0 = monotonicSeconds()
        c0 = processCPUSeconds()
        _ = try stack.projector.project(inputs, context: context)
        r.projector = monotonicSeconds() - t0
        r.projectorCPU = processCPUSeconds() - c0
        r.parts = clock.entries
        return r
    }

    let fastNote = fast == picked ? "what `--precision fast` picks" : "run although `--precision fast` picks \(picked.rawValue)"
    var md = """
        The whole vision stage of a synthetic 1024×768 image (\(plan.views.count) views: \(viewList)), part by part:
        CLIP ViT-L/14-336 (23 layers) and the Hiwin projector at E = \(embedDim) (Vicuna-7B's width, feature_scale_mask 7)
        on synthetic BF16 weights. Exact = float32 products; fast = `MatrixArithmetic.\(fast.rawValue)` (\(fastNote) on this CPU:
        \(CPUProfile.current)). Times from the library's `StageClock`
        (`ComputeContext.stageClock`); GFLOP = multiply-adds × 2 from the shapes of each part (VDIM: the 1×1
        convolutions, range dot products, 16 bicubic and 49 adaptive taps per value); share = against the peak of the
        part's instruction with as many threads, measured in the same run (int8 parts of the fast path against the int8
        VNNI peak, everything else against float32 FMA); "other" = the stage's time outside its timed parts (norms,
        residuals, bias adds, weight widening, copies). "exact CPU s" = the process's CPU time in the part (all
        threads, the pool's spin-waits included) and "share/CPU" the arithmetic per CPU-second against one core's
        float32 FMA peak per CPU-second (the peak loop timed by its thread's CPU clock): on a shared machine, where wall time also counts other processes' turns on the cores, the
        figure that still says how well the part uses a core ("fast CPU s" and the last column: the same for the fast
        path). Exact and fast runs alternate, each stack with its own
        `VisionScratch` as a session keeps (buffers reused after the warm-up call); the best total of each is shown.


        """
    let reps = options.quick ? 1 : 2
    for threads in options.quick ? [2] : [1, 2] {
        let peaks = MachinePeaks.measure(threads: threads, repeats: 3)
        let corePeak = fmaPeakPerCPUSecond()
        _ = try run(exactStack, threads: threads)   // page-in of both weight files, first-call allocations
        _ = try run(fastStack, threads: threads)
        var exact: VisionRun?, fastRun: VisionRun?
        var loads: [String] = []
        for _ in 0..<reps {
            let e = try run(exactStack, threads: threads)
            if exact.map({ e.total < $0.total }) ?? true { exact = e }
            loads.append(loadAverage())
            let f = try run(fastStack, threads: threads)
            if fastRun.map({ f.total < $0.total }) ?? true { fastRun = f }
            loads.append(loadAverage())
            print("vision-stages \(threads) thread(s): exact \(fmt(e.total, 2)) s (ViT \(fmt(e.vit, 2)), projector \(fmt(e.projector, 2))), "
                  + "fast \(fmt(f.total, 2)) s (ViT \(fmt(f.vit, 2)), projector \(fmt(f.projector, 2))), load \(loadAverage())")
        }
        guard let exact, let fastRun else { continue }
        md += table(exact: exact, fast: fastRun, peaks: peaks, corePeak: corePeak, threads: threads, loads: loads)
    }
    return md
}

/// One core's float32 FMA peak per CPU-second of the calling thread: `luhd_peak_fma_f32` timed
/// with `CLOCK_THREAD_CPUTIME_ID`, best of 5 (operations per second). The denominator of the
/// tables' CPU-time shares: a loaded machine lowers a wall-time peak, not this one.
private func fmaPeakPerCPUSecond() -> Double {
    func cpu() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
    var best = 0.0
    for _ in 0..<5 {
        let t0 = cpu()
        let operations = luhd_peak_fma_f32(20_000_000)
        let t = cpu() - t0
        if t > 0 { best = max(best, operations / t) }
    }
    return best
}

/// The per-part table of one thread count.
private func table(exact: VisionRun, fast: VisionRun, peaks: MachinePeaks, corePeak: Double, threads: Int,
                   loads: [String]) -> String {
    func share(_ operations: Double, _ seconds: Double, int8: Bool) -> String {
        let peak = int8 ? peaks.int8.value : peaks.fmaF32
        guard operations > 0, seconds > 0, peak > 0 else { return "–" }
        return "\(fmt(100 * operations / seconds / peak, 0)) % \(int8 ? "int8" : "f32")"
    }
    func rate(_ operations: Double, _ seconds: Double) -> String {
        operations > 0 && seconds > 0 ? fmt(operations / seconds / 1e9, 0) : "–"
    }
    func cpuShare(_ operations: Double, _ cpu: Double?) -> String {
        guard let cpu, operations > 0, cpu > 0, corePeak > 0 else { return "–" }
        return "\(fmt(100 * operations / cpu / corePeak, 0)) %"
    }
    var rows: [String] = []
    /// `cpu`: the exact and fast runs' CPU seconds of the part, when measured.
    func row(_ name: String, _ operations: Double, _ e: Double, _ f: Double, fastInt8: Bool,
             cpu: (exact: Double, fast: Double)? = nil) {
        rows.append("| \(name) | \(operations > 0 ? fmt(operations / 1e9, 1) : "–") | \(fmt(e, 3)) | \(rate(operations, e)) | "
                    + "\(share(operations, e, int8: false)) | \(cpu.map { fmt($0.exact, 3) } ?? "–") | "
                    + "\(cpuShare(operations, cpu?.exact)) | \(fmt(f, 3)) | \(rate(operations, f)) | "
                    + "\(share(operations, f, int8: fastInt8)) | \(cpu.map { fmt($0.fast, 3) } ?? "–") | \(fmt(e / f, 2))× | "
                    + "\(cpu.map { "\(fmt($0.exact / $0.fast, 2))×" } ?? "–") |")
    }
    func group(_ title: String, prefix: [String], exactTotal: Double, fastTotal: Double, cpu: (exact: Double, fast: Double)) -> Double {
        let names = exact.parts.map(\.name).filter { n in prefix.contains { n.hasPrefix($0) } }
        var sumE = 0.0, sumF = 0.0, sumCPU = (exact: 0.0, fast: 0.0), ops = 0.0
        for n in names {
            let e = exact.parts.first { $0.name == n }!, f = fast.parts.first { $0.name == n }
            row(n, e.operations, e.seconds, f?.seconds ?? 0, fastInt8: int8Parts.contains(n),
                cpu: (e.cpuSeconds, f?.cpuSeconds ?? 0))
            sumE += e.seconds; sumF += f?.seconds ?? 0; ops += e.operations
            sumCPU = (sumCPU.exact + e.cpuSeconds, sumCPU.fast + (f?.cpuSeconds ?? 0))
        }
        row("\(title): other", 0, exactTotal - sumE, fastTotal - sumF, fastInt8: false,
            cpu: (cpu.exact - sumCPU.exact, cpu.fast - sumCPU.fast))
        row("**\(title) total**", ops, exactTotal, fastTotal, fastInt8: false, cpu: cpu)
        return ops
    }
    row("view preprocessing (resizes, normalisation)", 0, exact.preprocess, fast.preprocess, fastInt8: false)
    let vitOps = group("ViT", prefix: ["ViT"], exactTotal: exact.vit, fastTotal: fast.vit, cpu: (exact.vitCPU, fast.vitCPU))
    let projectorOps = group("VDIM + Hiwin", prefix: ["VDIM", "level", "Hiwin"], exactTotal: exact.projector,
                             fastTotal: fast.projector, cpu: (exact.projectorCPU, fast.projectorCPU))
    let ops = vitOps + projectorOps
    let e = exact.vit + exact.projector, f = fast.vit + fast.projector
    row("**ViT + VDIM + Hiwin**", ops, e, f, fastInt8: false,
        cpu: (exact.vitCPU + exact.projectorCPU, fast.vitCPU + fast.projectorCPU))
    row("**whole vision stage (with preprocessing)**", ops, exact.total, fast.total, fastInt8: false)
    return """
        \(threads) thread(s); peaks: \(peaks.line); one core's float32 FMA peak per CPU-second \(fmt(corePeak / 1e9, 1)) GFLOP/s; load (1-minute average after each run): \(loads.joined(separator: ", ")).

        | part | GFLOP | exact s | GFLOP/s | share | exact CPU s | share/CPU | fast s | GFLOP/s | share | fast CPU s | exact / fast | exact / fast (CPU) |
        |---|---|---|---|---|---|---|---|---|---|---|---|---|
        \(rows.joined(separator: "\n"))


        """
}
