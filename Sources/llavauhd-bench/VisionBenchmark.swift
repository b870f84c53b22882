#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `vit`: the CLIP ViT-L/14-336 tower (24 layers stored, 23 run for layer −2, width 1024,
/// 16 heads, MLP 4096) with synthetic BF16 weights in a temporary safetensors file, on one
/// 336×336 view and on the 7 views of a 1024×768 image, at 1 and 2 threads; the 7 views again
/// with the fast paths (bf16 products with AVX512_BF16, int8 products with AVX-512 VNNI) and
/// each path's share of the machine's peak for its instructions (measured here, `MachinePeaks`);
/// plus the view preprocessing (Pillow-exact resizes + normalisation) of that image, and
/// PyTorch's figure from scripts/bench/bench_torch.py `vit` on the same threads when torch is
/// importable.
var visionBenchmark: Benchmark {
    Benchmark(name: "vit", summary: "CLIP ViT-L/14-336 encoder (layer -2) and view preprocessing", run: runVisionBenchmark)
}

private func runVisionBenchmark(_ options: BenchOptions) throws -> String {
    let config = CLIPVisionConfig(hiddenSize: 1024, layerCount: 24, headCount: 16, intermediateSize: 4096)
    let path = "/tmp/llavauhd-bench-vit-\(getpid()).safetensors"
    try SyntheticCLIPCheckpoint.write(config: config, prefix: "vision_model.", to: path)
    defer { unlink(path) }
    let store = try WeightStore(paths: [path])
    let encoder = try CLIPVisionEncoder(store: store, prefix: "vision_model.", config: config)
    let bf16Encoder = BF16Product.isAvailable
        ? try CLIPVisionEncoder(store: store, prefix: "vision_model.", config: config, arithmetic: .bfloat16) : nil
    let quantizeStart = monotonicSeconds()
    let int8Encoder = Int8Product.isAvailable
        ? try CLIPVisionEncoder(store: store, prefix: "vision_model.", config: config, arithmetic: .int8, threads: 2) : nil
    let quantizeSeconds = monotonicSeconds() - quantizeStart
    try BLAS.load()

    // Inputs: a 336×336 view, and a synthetic 1024×768 photo-like image cut as upstream cuts it.
    let single = try syntheticPixels(width: 336, height: 336, seed: 1)
    let image = syntheticImage(width: 1024, height: 768)
    let preprocessor = ViewPreprocessor()
    let (plan, views) = try preprocessor.pixels(of: image, threads: 2)
    let viewList = plan.views.map { "\($0.size.width)x\($0.size.height)" }.joined(separator: ", ")
    let reps = options.repetitions(3)
    let tokens = plan.views.reduce(0) { $0 + $1.patchCount + 1 }

    let gflop = encoderFlops(config: config, layers: encoder.layersUsed, views: plan.views.map(\.patchCount)) / 1e9
    var rows: [String] = []
    var fastRows: [String] = []
    var peakLines: [String] = []
    var preprocessRows: [String] = []
    for threads in [1, 2] {
        let context = ComputeContext(threads: threads)
        _ = try encoder.encode([single], context: context)   // warm-up (page-in of the weights)
        let tSingle = try bestOfWithCPU(reps) { _ = try encoder.encode([single], context: context) }
        let tAll = try bestOfWithCPU(reps) { _ = try encoder.encode(views, context: context) }
        let tPre = try bestOfWithCPU(reps * 3) { _ = try preprocessor.pixels(of: image, threads: threads) }
        let torch = torchViT(threads: threads, repeat: reps, compute: "fp32")
        func cell(_ ours: (wall: Double, cpu: Double), _ theirs: Double?) -> String {
            let mine = "\(fmt(ours.wall, 2)) s | \(fmt(ours.cpu, 2)) s"
            guard let theirs else { return mine + " | n/a" }
            return mine + " | \(fmt(theirs, 2)) s (\(fmt(theirs / ours.wall, 2))×)"
        }
        rows.append("| \(threads) | 336×336 (1 view, 577 tokens) | \(cell(tSingle, torch?.single)) |")
        rows.append("| \(threads) | 1024×768 (\(views.count) views, \(tokens) tokens) | \(cell(tAll, torch?.all)) |")

        // The fast paths on the 7 views, each against the peak of its own instruction.
        let peaks = MachinePeaks.measure(threads: threads, repeats: 3)
        peakLines.append("\(threads) thread(s): \(peaks.line)")
        func fastRow(_ name: String, _ t: (wall: Double, cpu: Double), peak: Double, peakName: String, torch: Double?) -> String {
            let rate = gflop / t.wall
            let share = peak > 0 ? "\(fmt(100 * rate * 1e9 / peak, 0)) % of \(peakName)" : "n/a"
            return "| \(threads) | \(name) | \(fmt(t.wall, 2)) s | \(fmt(t.cpu, 2)) s | \(fmt(tAll.wall / t.wall, 2))× | \(fmt(rate, 0)) | "
                + "\(share) | \(torch.map { "\(fmt($0, 2)) s (\(fmt($0 / t.wall, 2))×)" } ?? "n/a") | \(loadAverage()) |"
        }
        fastRows.append(fastRow("float32 (exact)", tAll, peak: peaks.fmaF32, peakName: "float32 FMA", torch: torch?.all))
        if let bf16Encoder {
            _ = try bf16Encoder.encode([single], context: context)
            let tBF16 = try bestOfWithCPU(reps) { _ = try bf16Encoder.encode(views, context: context) }
            let torchBF16 = torchViT(threads: threads, repeat: reps, compute: "bf16")
            fastRows.append(fastRow("bf16 (`vdpbf16ps`)", tBF16, peak: peaks.dotBF16, peakName: "BF16 dot", torch: torchBF16?.all))
            print("vit \(threads) thread(s): 1024x768 with bf16 products \(fmt(tBF16.wall, 2)) s")
        }
        if let int8Encoder {
            _ = try int8Encoder.encode([single], context: context)
            let tInt8 = try bestOfWithCPU(reps) { _ = try int8Encoder.encode(views, context: context) }
            let instruction = Int8ProductKernel.host == .avx2 ? "`vpmaddubsw`" : "`vpdpbusd`"
            fastRows.append(fastRow("int8 (Q8_0 copy, \(instruction))", tInt8, peak: peaks.int8.value, peakName: peaks.int8.name,
                                    torch: nil))
            print("vit \(threads) thread(s): 1024x768 with int8 products \(fmt(tInt8.wall, 2)) s")
        }
        preprocessRows.append("| \(threads) | \(fmt(tPre.wall * 1000, 1)) ms | \(fmt(tPre.cpu * 1000, 1)) ms |")
        print("vit \(threads) thread(s): 336 \(fmt(tSingle.wall, 2)) s, 1024x768 \(fmt(tAll.wall, 2)) s "
              + "(cpu \(fmt(tAll.cpu, 2)) s), preprocess \(fmt(tPre.wall * 1000, 1)) ms")
    }

    let int8Copy = int8Encoder.map { "\($0.int8CopyBytes >> 20) MiB, quantized in \(fmt(quantizeSeconds, 2)) s on 2 threads" }
        ?? "not run: this CPU has no AVX-512 VNNI"
    return """
        CLIP ViT-L/14-336, 23 of 24 layers (output of layer −2), float32 compute on synthetic BF16
        weights (widened per layer per call; GEMMs in OpenBLAS \(BLAS.coreName) through `BLAS.sgemm`, threads =
        the thread count). 1024×768 views: \(viewList) (≈\(Int(gflop)) GFLOP). PyTorch:
        `scripts/bench/bench_torch.py vit` (transformers CLIPVisionModel, float32, SDPA, 23 layers, views
        one at a time), ratio = PyTorch wall time / ours (> 1: we are faster). Best of \(reps) (wall
        time; CPU = process CPU time of that run, all threads, which shows contention from other
        processes when CPU < threads × wall).

        | threads | input | llava-uhd wall | llava-uhd CPU | PyTorch wall (ratio) |
        |---|---|---|---|---|
        \(rows.joined(separator: "\n"))

        The fast paths on the 1024×768 views (7 views, ≈\(Int(gflop)) GFLOP): the q/k/v, out, fc1 and fc2 products in bf16
        (`MatrixArithmetic.bfloat16`: AVX512_BF16 `vdpbf16ps` against the BF16 weights in place, activations rounded to
        bf16\(bf16Encoder == nil ? "; not run: this CPU has no AVX512_BF16" : "")) or in int8 (`MatrixArithmetic.int8`: a Q8_0
        copy of those weights made at load, \(int8Copy),
        activations quantized per block of 32, the int8 VNNI product of quantized prefill); patch embedding and attention
        float32 in all. On this CPU `--precision fast` picks \(CPUProfile.current.fastVisionArithmetic.rawValue) for the
        vision tower (\(CPUProfile.current)). GFLOP/s = the encoder's multiply-adds × 2 over the wall time; the share is
        against the peak of the row's instruction with as many threads (register-resident loops, best of 3):
        \(peakLines.joined(separator: "; ")). Load = the 1-minute load average after the row (the machine may be shared:
        above the thread count, other processes took cores). PyTorch: the same script with `--compute bf16` for the bf16
        row (bf16 weights and activations).

        | threads | products | wall | CPU | vs float32 | GFLOP/s | share of the peak | PyTorch wall (ratio) | load |
        |---|---|---|---|---|---|---|---|---|
        \(fastRows.joined(separator: "\n"))

        View preprocessing of the 1024×768 image (plan, 3 Pillow-exact BICUBIC resizes to
        924×700 and 378×280, crops, CLIP normalisation; best of \(reps * 3)):

        | threads | wall | CPU |
        |---|---|---|
        \(preprocessRows.joined(separator: "\n"))
        """
}

/// The fastest of `n` runs (wall seconds) and the process CPU seconds of that run.
private func bestOfWithCPU(_ n: Int, _ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    func cpuNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
    var best = (wall: Double.infinity, cpu: 0.0)
    for _ in 0..<max(1, n) {
        let c0 = cpuNow(), t0 = monotonicSeconds()
        try body()
        let wall = monotonicSeconds() - t0
        if wall < best.wall { best = (wall, cpuNow() - c0) }
    }
    return best
}

/// Multiply-adds ×2 of the encoder for views of the given patch counts.
private func encoderFlops(config: CLIPVisionConfig, layers: Int, views: [Int]) -> Double {
    let c = Double(config.hiddenSize), i = Double(config.intermediateSize)
    var total = 0.0
    for n in views {
        let t = Double(n + 1)
        let perLayer = 2 * t * c * (4 * c + 2 * i) + 4 * t * t * c
        total += Double(layers) * perLayer + 2 * Double(n) * c * Double(3 * config.patchSize * config.patchSize)
    }
    return total
}

/// Deterministic pseudo-random pixels in the range of CLIP-normalised values.
private func syntheticPixels(width: Int, height: Int, seed: UInt64) throws -> PixelTensor {
    var rng = SplitMix(seed: seed)
    let values = (0..<(3 * width * height)).map { _ in Float(rng.nextUnit()) * 4 - 2 }
    return try PixelTensor(width: width, height: height, values: values)
}

/// A smooth image with some texture (so the resizes do real work on every pixel).
func syntheticImage(width: Int, height: Int) -> RGBImage {
    var rng = SplitMix(seed: 7)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let base = (x * 255 / width + y * 255 / height) / 2
            for c in 0..<3 {
                pixels[(y * width + x) * 3 + c] = UInt8(truncatingIfNeeded: base + c * 40 + Int(rng.next() % 24))
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// PyTorch's `vit` figures (seconds) from scripts/bench/bench_torch.py, or nil when torch is not
/// importable or the script fails.
private func torchViT(threads: Int, repeat reps: Int, compute: String) -> (single: Double, all: Double)? {
    guard PythonRunner.hasModule("torch"),
          let json = PythonRunner.json("scripts/bench/bench_torch.py", ["vit", "--threads", String(threads), "--repeat", String(reps),
                                                                 "--compute", compute]),
          let single = json["single_336_s"]?.doubleValue, let all = json["uhd_1024x768_7views_s"]?.doubleValue
    else { return nil }
    return (single, all)
}

/// Writes a safetensors file holding a CLIP vision tower of `config` under `prefix` with BF16
/// values drawn like an initialised model (matrices ~ N(0, 1/fan_in), norm weights ≈ 1, small
/// biases), so that the benchmark runs on realistic magnitudes without a download.
enum SyntheticCLIPCheckpoint {
    static func write(config: CLIPVisionConfig, prefix: String, to path: String) throws {
        let c = config.hiddenSize, i = config.intermediateSize, p = config.patchSize, g = config.gridSide
        var tensors: [(name: String, shape: [Int], scale: Float, offset: Float)] = [
            ("embeddings.class_embedding", [c], 0.5, 0),
            ("embeddings.patch_embedding.weight", [c, 3, p, p], 1 / Float(3 * p * p).squareRoot(), 0),
            ("embeddings.position_embedding.weight", [1 + g * g, c], 0.5, 0),
            ("pre_layrnorm.weight", [c], 0.1, 1), ("pre_layrnorm.bias", [c], 0.1, 0),
            ("post_layernorm.weight", [c], 0.1, 1), ("post_layernorm.bias", [c], 0.1, 0),
        ]
        for l in 0..<config.layerCount {
            let n = "encoder.layers.\(l)."
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                tensors.append((n + "self_attn.\(proj).weight", [c, c], 1 / Float(c).squareRoot(), 0))
                tensors.append((n + "self_attn.\(proj).bias", [c], 0.02, 0))
            }
            for norm in ["layer_norm1", "layer_norm2"] {
                tensors.append((n + norm + ".weight", [c], 0.1, 1))
                tensors.append((n + norm + ".bias", [c], 0.1, 0))
            }
            tensors.append((n + "mlp.fc1.weight", [i, c], 1 / Float(c).squareRoot(), 0))
            tensors.append((n + "mlp.fc1.bias", [i], 0.02, 0))
            tensors.append((n + "mlp.fc2.weight", [c, i], 1 / Float(i).squareRoot(), 0))
            tensors.append((n + "mlp.fc2.bias", [c], 0.02, 0))
        }
        var header = SafetensorsWriter()
        for t in tensors { header.add(prefix + t.name, dtype: .bf16, shape: t.shape) }
        guard let f = fopen(path, "wb") else { throw LlavaError(.io, "cannot create \(path)") }
        defer { fclose(f) }
        _ = header.header().withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        var rng = SplitMix(seed: 42)
        var chunk = [UInt16](repeating: 0, count: 1 << 16)
        for t in tensors {
            var left = t.shape.reduce(1, *)
            while left > 0 {
                let n = min(left, chunk.count)
                for j in 0..<n {
                    // Uniform with unit variance, scaled.
                    let v = Float((rng.nextUnit() - 0.5) * 3.4641016) * t.scale + t.offset
                    chunk[j] = UInt16(truncatingIfNeeded: v.bitPattern >> 16)
                }
                guard fwrite(chunk, 2, n, f) == n else { throw LlavaError(.io, "cannot write \(path)") }
                left -= n
            }
        }
    }
}
