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
    var workingSet = 1 << 30
    let weightsPerToken = 6.61e9
    /// BF16 and every block format (11008 columns are whole 256-element super-blocks).
    static let formats = [QuantFormat.bf16] + QuantFormat.allCases.filter(\.isBlockQuantized)

    func run() throws -> String {
        try BLAS.load()
        let reps = options.repetitions(5)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: workingSet + 4096, alignment: 4096)
        // In huge pages, as a loaded model's decode weights are (`InterleavingDecoderSource`).
        luhd_advise_huge_pages(buffer, workingSet)
        defer { buffer.deallocate() }
        memset(buffer, 1, workingSet)

        var md = "Machine: \(machineLine()), load average \(loadAverage()) at the start. Working set \(workingSet >> 20) MiB per format "
        md += "(\(rows)×\(cols) matrices, 1 right-hand row unless stated). Best of \(reps).\n\n"
        // The read bandwidth is measured again before every format and the best figure kept:
        // other work on the machine only ever lowers it.
        var bw = [1: 0.0, 2: 0.0]
        func measureBandwidth() {
            for threads in [1, 2] { bw[threads] = max(bw[threads]!, readBandwidth(buffer, threads: threads, reps: reps)) }
        }
        var results: [Result] = []

        // bf16 through the existing TensorView path (MatMul.linear, dense kernels).
        measureBandwidth()
        let bf16Count = fill(buffer, format: .bf16)
        for threads in [1, 2] {
            let views = (0..<bf16Count).map { i in
                TensorView(name: "w\(i)", dtype: .bf16, shape: [rows, cols],
                           data: UnsafeRawPointer(buffer + i * rows * cols * 2), owner: BenchOwner())
            }
            let t = try timeSet(count: bf16Count, m: 1, reps: reps) { i, x, y in
                MatMul.linear(x, rows: 1, weight: views[i], into: y, context: ComputeContext(threads: threads))
            }
            results.append(Result(format: "BF16", bytesPerWeight: 2, kernel: "MatMul.linear (TensorView)", m: 1, threads: threads,
                                  bytes: bf16Count * rows * cols * 2, seconds: t, count: bf16Count))
        }

        for format in Self.formats {
            measureBandwidth()
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
                        results.append(Result(format: format.rawValue, bytesPerWeight: bpw, kernel: "\(kernel)", m: m,
                                              threads: threads, bytes: count * matrices[0].byteCount, seconds: t, count: count))
                    }
                }
            }
        }
        measureBandwidth()
        md += "Memory read bandwidth (AVX2 loads over the same buffer, best of the measurements between formats): "
        md += "**\(fmt(bw[1]!)) GB/s** 1 thread, **\(fmt(bw[2]!)) GB/s** 2 threads.\n\n"
        md += "| format | bytes/weight | kernel | rows of x | threads | GB/s | % of read bw | ms per 4096×11008 | 7B tokens/s |\n"
        md += "|---|---|---|---|---|---|---|---|---|\n"
        for r in results { md += row(r, bw: bw[r.threads]!) }
        md += "\nDefault kernel: \(QuantKernel.preferred(for: .q4_0)) (f32 accumulation). "
        md += "7B tokens/s = GB/s ÷ (6.61 G weights × bytes/weight): the bound the weight reads alone set.\n"
        md += try prefillSection(buffer, reps: max(1, reps / 2))
        if let gguf = realModelSection(reps: reps) { md += "\n" + gguf }
        return md
    }

    /// Fills the working set with as many matrices of `format` as fit and returns their count:
    /// pseudo-random bytes everywhere (every page different: repeated pages read faster than
    /// real weights on some virtual machines), then each block's f16 scales set to sane values
    /// (BF16: every element's exponent), so the data is finite and without denormals.
    func fill(_ buffer: UnsafeMutableRawPointer, format: QuantFormat) -> Int {
        let bytes = rows * format.rowBytes(columns: cols)!
        let count = max(1, workingSet / bytes)
        var rng = SplitMix(seed: 42 &+ UInt64(format.ggmlType))
        for i in stride(from: 0, to: count * bytes - 7, by: 8) { buffer.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
        let d = Float16(0.002).bitPattern
        let blocks = count * rows * cols / format.blockElements
        let u16 = buffer.assumingMemoryBound(to: UInt16.self)
        switch format {
        case .bf16:
            for i in 0..<(count * rows * cols) { u16[i] = (u16[i] & 0x807F) | 0x3C00 }
        default:
            for b in 0..<blocks {
                for at in format.halfFloatFields { (buffer + b * format.blockBytes + at).storeBytes(of: d, as: UInt16.self) }
            }
        }
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
        ReadBandwidth.measure(UnsafeRawPointer(buffer), bytes: workingSet, threads: threads, repeats: reps) / 1e9
    }

    /// Prefill: 256 rows of x times one 4096×11008 matrix, through the tile path (dequantize
    /// 4 MB tiles, sgemm) for the quantized formats and the existing TensorView path for BF16.
    func prefillSection(_ buffer: UnsafeMutableRawPointer, reps: Int) throws -> String {
        let m = 256
        var rng = SplitMix(seed: 11)
        let x = (0..<(m * cols)).map { _ in rng.nextFloat() - 0.5 }
        var y = [Float](repeating: 0, count: m * rows)
        var md = "\nPrefill (\(m) rows of x × one \(rows)×\(cols) matrix, 2 threads, GFLOP/s = 2·m·rows·cols / time):"
        for format in Self.formats {
            _ = fill(buffer, format: format)
            let t: Double
            if format == .bf16 {
                let view = TensorView(name: "w", dtype: .bf16, shape: [rows, cols], data: UnsafeRawPointer(buffer), owner: BenchOwner())
                t = bestOf(reps) { MatMul.linear(x, rows: m, weight: view, into: &y, context: ComputeContext(threads: 2)) }
            } else {
                let w = try QuantizedMatrix(name: "w", format: format, rows: rows, columns: cols, data: UnsafeRawPointer(buffer), owner: nil)
                t = bestOf(reps) { MatMul.linear(x, rows: m, weight: w, into: &y, context: ComputeContext(threads: 2)) }
            }
            md += " \(format.rawValue) \(fmt(2 * Double(m * rows * cols) / t / 1e9)) GFLOP/s\(format == Self.formats.last ? "." : ",")"
        }
        return md + "\n"
    }

    struct Result {
        let format: String
        let bytesPerWeight: Double
        let kernel: String
        let m: Int
        let threads: Int
        let bytes: Int
        let seconds: Double
        let count: Int
    }

    func row(_ r: Result, bw: Double) -> String {
        let gbs = Double(r.bytes) / r.seconds / 1e9
        let tokens = gbs * 1e9 / (weightsPerToken * r.bytesPerWeight)
        let perMatrix = r.seconds / Double(r.count) * 1e3
        return "| \(r.format) | \(fmt(r.bytesPerWeight, 4)) | \(r.kernel) | \(r.m) | \(r.threads) | \(fmt(gbs)) | \(fmt(100 * gbs / bw, 0))% | \(fmt(perMatrix, 2)) | \(r.m == 1 ? fmt(tokens) : "–") |\n"
    }

    /// Reads real GGUF files (env LLAVAUHD_GGUF, a colon-separated list; default
    /// `realGGUFDefault`): open time and resident
    /// memory (the weights must stay in the mapping), the metadata the LLM needs, tensors by type,
    /// and matvec GB/s and accuracy on its Q4_K / Q6_K matrices. A sidecar `PATH.realbytes`
    /// (written by the fetch script for a partial download) marks where real data ends: matrices
    /// past it are zero-filled and are timed but not checked for accuracy.
    func realModelSection(reps: Int) -> String? {
        let env = environment("LLAVAUHD_GGUF") ?? realGGUFDefault
        let paths = env.split(separator: ":").map(String.init).filter(fileExists)
        guard !paths.isEmpty else { return nil }
        var md = "### Real GGUF files\n\n"
        for path in paths {
            let rss0 = residentBytes()
            let t0 = monotonicSeconds()
            let g: GGUFFile
            do { g = try GGUFFile(path: path) } catch {
                md += "- `\(fileName(path))`: **failed to open**: \(error)\n"
                continue
            }
            let openTime = monotonicSeconds() - t0
            let rss1 = residentBytes()
            let realBytes = (try? readWholeFile(path + ".realbytes")).flatMap {
                Int(String(decoding: $0, as: UTF8.self).trimmingCharacters())
            } ?? g.file.size
            var byType: [String: Int] = [:]
            for t in g.tensors { byType[t.type.name, default: 0] += 1 }
            let arch = g.architecture ?? "?"
            md += "- `\(fileName(path))` (\(g.file.size / 1_000_000) MB\(realBytes < g.file.size ? ", real data in the first \(realBytes / 1_000_000) MB only: the rest of the parts are not published, zero-filled" : "")): "
            md += "GGUF v\(g.version), `\(arch)`, \(g.tensors.count) tensors (\(byType.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))), "
            md += "\(g.metadata.count) metadata entries; opened in \(fmt(openTime * 1e3)) ms, resident memory +\(fmt(Double(rss1 - rss0) / 1e6)) MB "
            md += "(metadata arrays parsed; weights stay in the mapping).\n"
            md += "  - \(arch).block_count = \(g.int(arch + ".block_count").map(String.init) ?? "–"), embedding_length = \(g.int(arch + ".embedding_length").map(String.init) ?? "–"), "
            md += "feed_forward_length = \(g.int(arch + ".feed_forward_length").map(String.init) ?? "–"), heads = \(g.int(arch + ".attention.head_count").map(String.init) ?? "–")/\(g.int(arch + ".attention.head_count_kv").map(String.init) ?? "–"); "
            md += "tokenizer \(g.string("tokenizer.ggml.model") ?? "–"): \(g.strings("tokenizer.ggml.tokens")?.count ?? 0) tokens, \(g.strings("tokenizer.ggml.merges")?.count ?? 0) merges, "
            md += "bos \(g.int("tokenizer.ggml.bos_token_id").map(String.init) ?? "–"), eos \(g.int("tokenizer.ggml.eos_token_id").map(String.init) ?? "–").\n"

            for type in QuantFormat.allCases.filter(\.isBlockQuantized).map(\.rawValue) {
                let infos = g.tensors.filter { $0.type.name == type && $0.dimensions.count == 2 }
                guard !infos.isEmpty else { continue }
                // Time the largest matrices of the type, up to 1 GiB of them.
                var chosen: [QuantizedMatrix] = []
                var total = 0
                for info in infos.sorted(by: { $0.byteCount > $1.byteCount }) where total < workingSet {
                    guard let m = try? g.matrix(info.name) else { continue }
                    chosen.append(m)
                    total += m.byteCount
                }
                guard !chosen.isEmpty else { continue }
                let kernel = QuantKernel.preferred(for: chosen[0].format)
                var gbs: [Double] = []
                for threads in [1, 2] {
                    var rng = SplitMix(seed: 3)
                    let maxCols = chosen.map(\.columns).max() ?? 0
                    let x = (0..<maxCols).map { _ in rng.nextFloat() - 0.5 }
                    var y = [Float](repeating: 0, count: chosen.map(\.rows).max() ?? 0)
                    if threads == 1 {   // first touch: page the mapping in, untimed
                        for m in chosen { _ = luhd_peak_read_streams(m.data, UInt(m.byteCount), 1) }
                    }
                    let t = bestOf(reps) {
                        for m in chosen {
                            MatMul.linear(x, rows: 1, weight: m, into: &y, context: ComputeContext(threads: threads), kernel: kernel)
                        }
                    }
                    gbs.append(Double(total) / t / 1e9)
                }
                // Accuracy on real rows: each kernel against f64 sums of the dequantized rows.
                var worst: [QuantKernel: Double] = [:]
                var checked = 0
                for info in infos.prefix(8) where info.fileOffset < realBytes {
                    guard let full = try? g.matrix(info.name) else { continue }
                    let rows = min(64, full.rows, max(0, (realBytes - info.fileOffset) / full.rowBytes))
                    guard rows > 0 else { continue }
                    let m = full.rows(0..<rows)
                    var rng = SplitMix(seed: 5)
                    let x = (0..<m.columns).map { _ in rng.nextFloat() - 0.5 }
                    let w = m.dequantized()
                    for kernel in QuantKernel.allCases where kernel.isAvailable && kernel.supports(m.format) {
                        var y = [Float](repeating: 0, count: rows)
                        MatMul.linear(x, rows: 1, weight: m, into: &y, context: ComputeContext(threads: 1), kernel: kernel)
                        for r in 0..<rows {
                            var s = 0.0, sa = 0.0
                            for k in 0..<m.columns {
                                s += Double(w[r * m.columns + k]) * Double(x[k])
                                sa += abs(Double(w[r * m.columns + k]) * Double(x[k]))
                            }
                            if sa > 0 { worst[kernel] = max(worst[kernel] ?? 0, abs(Double(y[r]) - s) / sa) }
                        }
                    }
                    checked += 1
                }
                md += "  - \(type): \(infos.count) matrices; \(chosen.count) largest (\(chosen[0].rows)×\(chosen[0].columns) first, \(total / 1_000_000) MB) "
                md += "with \(kernel): **\(fmt(gbs[0])) GB/s** 1 thread, **\(fmt(gbs[1])) GB/s** 2 threads"
                if checked > 0 {
                    let errs = worst.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) \(sci($0.value))" }
                    md += "; on \(checked) matrices of real data (up to 64 rows each), max |y − y_f64| / Σ|w·x|: \(errs.joined(separator: ", ")).\n"
                } else {
                    md += ".\n"
                }
            }
            md += "  - resident memory after the runs: \(fmt(Double(residentBytes()) / 1e6)) MB (file pages read through the mapping count here).\n"
        }
        return md
    }
}

final class BenchOwner {}
