#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `quant`: matrix-vector throughput of the quantized weight formats on 7B-sized matrices
/// (4096×11008, as many as it takes to pass 1 GiB so the weights stream from memory, not from
/// the cache), next to the memory-read bandwidth measured in the same run, and the decode speed
/// of a 7B model those figures imply (LLaMA-2-7B shapes: 32 layers of 4×4096² + 3×4096×11008
/// weights plus a 32000×4096 lm_head = 6.61 G weights read per token).
var quantBenchmark: Benchmark {
    Benchmark(name: "quant", summary: "quantized matvec GB/s vs memory bandwidth (7B shapes)") { options in
        try QuantBench(options: options).run()
    }
}

struct QuantBench {
    let options: BenchOptions
    let rows = 4096, cols = 11008
    let workingSet = 1 << 30
    let weightsPerToken = 6.61e9

    func run() throws -> String {
        try BLAS.load()
        let reps = options.repetitions(5)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: workingSet + 4096, alignment: 4096)
        defer { buffer.deallocate() }
        memset(buffer, 1, workingSet)

        var md = "Machine: \(machineLine()). Working set \(workingSet >> 20) MiB per format "
        md += "(\(rows)×\(cols) matrices, 1 right-hand row unless stated). Best of \(reps).\n\n"
        let bw1 = readBandwidth(buffer, threads: 1, reps: reps)
        let bw2 = readBandwidth(buffer, threads: 2, reps: reps)
        md += "Memory read bandwidth (AVX2 loads over the same buffer): **\(fmt(bw1)) GB/s** 1 thread, **\(fmt(bw2)) GB/s** 2 threads.\n\n"
        md += "| format | bytes/weight | kernel | rows of x | threads | GB/s | % of read bw | ms per 4096×11008 | 7B tokens/s |\n"
        md += "|---|---|---|---|---|---|---|---|---|\n"

        // bf16 through the existing TensorView path (MatMul.linear, dense kernels).
        let bf16Count = fill(buffer, format: .bf16)
        for threads in [1, 2] {
            let views = (0..<bf16Count).map { i in
                TensorView(name: "w\(i)", dtype: .bf16, shape: [rows, cols],
                           data: UnsafeRawPointer(buffer + i * rows * cols * 2), owner: BenchOwner())
            }
            let t = try timeSet(count: bf16Count, m: 1, reps: reps) { i, x, y in
                MatMul.linear(x, rows: 1, weight: views[i], into: y, context: ComputeContext(threads: threads))
            }
            md += row("BF16", 2, "MatMul.linear (TensorView)", 1, threads, bytes: bf16Count * rows * cols * 2, seconds: t,
                      count: bf16Count, bw: threads == 1 ? bw1 : bw2)
        }

        for format in [QuantFormat.bf16, .q8_0, .q4_0, .q4_K, .q6_K] {
            let count = fill(buffer, format: format)
            let matrices = try (0..<count).map { i in
                try QuantizedMatrix(name: "w\(i)", format: format, rows: rows, columns: cols,
                                    data: UnsafeRawPointer(buffer + i * rows * format.rowBytes(columns: cols)!), owner: nil)
            }
            let bpw = Double(format.blockBytes) / Double(format.blockElements)
            for kernel in QuantKernel.allCases where kernel.isAvailable && kernel.supports(format) {
                for m in (format == .bf16 ? [1] : [1, 4]) {
                    for threads in [1, 2] {
                        let t = try timeSet(count: count, m: m, reps: reps) { i, x, y in
                            MatMul.linear(x, rows: m, weight: matrices[i], into: y,
                                          context: ComputeContext(threads: threads), kernel: kernel)
                        }
                        md += row(format.rawValue, bpw, "\(kernel)", m, threads, bytes: count * matrices[0].byteCount,
                                  seconds: t, count: count, bw: threads == 1 ? bw1 : bw2)
                    }
                }
            }
        }
        md += "\nDefault kernel: \(QuantKernel.preferred(for: .q4_0)) (f32 accumulation). "
        md += "7B tokens/s = GB/s ÷ (6.61 G weights × bytes/weight): the bound the weight reads alone set.\n"
        if let gguf = realModelSection(reps: reps) { md += "\n" + gguf }
        return md
    }

    /// Fills the working set with as many matrices of `format` as fit and returns their count.
    /// One matrix is made from random weights and copied, so the data is realistic (finite
    /// scales, no denormals) and cheap to make.
    func fill(_ buffer: UnsafeMutableRawPointer, format: QuantFormat) -> Int {
        let rb = format.rowBytes(columns: cols)!
        let bytes = rows * rb
        let count = max(1, workingSet / bytes)
        var rng = SplitMix(seed: 42)
        switch format {
        case .q4_K, .q6_K:
            // No quantizer for the K formats: random quants and scales, sane f16 super-scales.
            let u = buffer.assumingMemoryBound(to: UInt8.self)
            for i in 0..<bytes { u[i] = UInt8(truncatingIfNeeded: rng.next()) }
            let d = Float16(0.002).bitPattern
            for b in 0..<(rows * cols / 256) {
                let p = buffer + b * format.blockBytes
                if format == .q4_K {
                    p.storeBytes(of: d, as: UInt16.self)
                    (p + 2).storeBytes(of: d, as: UInt16.self)
                } else {
                    (p + 208).storeBytes(of: d, as: UInt16.self)
                }
            }
        default:
            let x = (0..<(rows * cols)).map { _ in rng.nextFloat() * 2 - 1 }
            let q = try! QuantizedMatrix.quantize(x, rows: rows, columns: cols, format: format)
            buffer.copyMemory(from: q.data, byteCount: bytes)
        }
        for i in 1..<count { (buffer + i * bytes).copyMemory(from: buffer, byteCount: bytes) }
        return count
    }

    /// Best time of one pass over all `count` matrices.
    func timeSet(count: Int, m: Int, reps: Int, _ body: (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws -> Double {
        var rng = SplitMix(seed: 7)
        let x = (0..<(m * cols)).map { _ in rng.nextFloat() - 0.5 }
        var y = [Float](repeating: 0, count: m * rows)
        return x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                bestOf(reps) { for i in 0..<count { body(i, xb.baseAddress!, yb.baseAddress!) } }
            }
        }
    }

    func readBandwidth(_ buffer: UnsafeMutableRawPointer, threads: Int, reps: Int) -> Double {
        let parts = chunks(workingSet / 4096, parts: threads)
        let b = SendablePointer(buffer.assumingMemoryBound(to: UInt8.self))
        var sink: UInt64 = 0
        let t = bestOf(reps) {
            var sums = [UInt64](repeating: 0, count: parts.count)
            sums.withUnsafeMutableBufferPointer { s in
                let sp = SendablePointer(s.baseAddress!)
                parallelFor(parts.count, threads: threads) { p in
                    let r = parts[p]
                    sp.p[p] = luhd_quant_read_bytes(b.p + r.lowerBound * 4096, r.count * 4096)
                }
            }
            sink ^= sums.reduce(0, ^)
        }
        if sink == 0x1234_5678 { print("") }
        return Double(workingSet) / t / 1e9
    }

    func row(_ name: String, _ bpw: Double, _ kernel: String, _ m: Int, _ threads: Int, bytes: Int, seconds: Double,
             count: Int, bw: Double) -> String {
        let gbs = Double(bytes) / seconds / 1e9
        let tokens = gbs * 1e9 / (weightsPerToken * bpw) / Double(m == 1 ? 1 : 1)
        let perMatrix = seconds / Double(count) * 1e3
        return "| \(name) | \(fmt(bpw, 4)) | \(kernel) | \(m) | \(threads) | \(fmt(gbs)) | \(fmt(100 * gbs / bw, 0))% | \(fmt(perMatrix, 2)) | \(m == 1 ? fmt(tokens) : "–") |\n"
    }

    /// Reads a real GGUF file (env LLAVAUHD_GGUF, default /work/gguf/model.gguf) when present:
    /// load time and resident memory, then matvec GB/s on its Q4_K and Q6_K matrices.
    func realModelSection(reps: Int) -> String? {
        nil
    }
}

final class BenchOwner {}

/// A small deterministic generator for benchmark data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

func fmt(_ v: Double, _ digits: Int = 1) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([v]) { vsnprintf(&buf, 64, "%.\(digits)f", $0) }
    return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
