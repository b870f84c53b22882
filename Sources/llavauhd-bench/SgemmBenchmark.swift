#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD
import LlavaUHD

/// `sgemm`: the arithmetic and bandwidth ceilings the model code works against.
///
/// * sgemm GFLOPS through `BLAS.sgemm` (fixed blocks, one single-threaded OpenBLAS call each,
///   blocks run on 1 or 2 threads), next to one plain OpenBLAS call with OpenBLAS's own 1 or 2
///   threads, for 1024³, 4096³ and the ViT-L linear shapes (577 tokens × 1024 → 4096 and back);
///   and `MatMul.linear` on BF16 weights (tiles widened to F32, then sgemm).
/// * Memory read bandwidth (a plain SIMD sum over 1 GiB) and the matrix-vector kernels' weight
///   streaming rate on 4096 × 11008 matrices (LLaMA MLP shape; 0.5 GB of BF16 in total, far
///   beyond the caches), 1 and 2 threads; and `MatMul.linear` time per row around the switch
///   from the matrix-vector kernels to sgemm (`MatMul.matvecMaxRows`).
var sgemmBenchmark: Benchmark { Benchmark(
    name: "sgemm",
    summary: "sgemm GFLOPS (1 and 2 threads), BF16 matrix-vector GB/s vs memory read bandwidth",
    run: runSgemmBenchmark) }

/// A weight tensor in anonymous memory, filled with small values.
private final class BenchTensor: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let view: TensorView

    init(rows: Int, cols: Int, dtype: DType, seed: UInt32) {
        let count = rows * cols
        raw = UnsafeMutableRawPointer.allocate(byteCount: count * dtype.size, alignment: 64)
        var s = seed | 1
        for i in 0..<count {
            s = s &* 1_664_525 &+ 1_013_904_223
            let v = (Float(s >> 8) / Float(1 << 24) - 0.5) * 0.04
            switch dtype {
            case .f32: raw.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
            case .f16: raw.storeBytes(of: Float16(v).bitPattern, toByteOffset: i * 2, as: UInt16.self)
            default: raw.storeBytes(of: UInt16(truncatingIfNeeded: v.bitPattern >> 16), toByteOffset: i * 2, as: UInt16.self)
            }
        }
        view = TensorView(name: "bench", dtype: dtype, shape: [rows, cols], data: UnsafeRawPointer(raw), owner: Owner())
    }

    deinit { raw.deallocate() }
    private final class Owner {}
}

private func runSgemmBenchmark(_ options: BenchOptions) throws -> String {
    try BLAS.load()
    let maxThreads = min(2, ComputeContext.defaultThreads)
    let threadCounts = Array(Set([1, maxThreads])).sorted()
    var md = "OpenBLAS: \(BLAS.description). Vector kernels: \(VectorKernels.isa).\n\n"

    // --- sgemm ---
    md += "sgemm GFLOPS (best of N): `BLAS.sgemm` (fixed blocks, results independent of threads) and one plain "
        + "OpenBLAS call with OpenBLAS's own threads; `MatMul.linear` with BF16 weights `[N, K]`.\n\n"
    md += "| M×N×K | " + threadCounts.map { "BLAS.sgemm \($0)T | OpenBLAS call \($0)T" }.joined(separator: " | ")
        + " | " + threadCounts.map { "MatMul BF16 \($0)T" }.joined(separator: " | ") + " |\n"
    md += "|---|" + String(repeating: "---|", count: threadCounts.count * 3) + "\n"
    let shapes = options.quick ? [(1024, 1024, 1024), (577, 4096, 1024)]
        : [(1024, 1024, 1024), (4096, 4096, 4096), (577, 4096, 1024), (577, 1024, 4096)]
    for (m, n, k) in shapes {
        let a = randomFloats(m * k, seed: 1), b = randomFloats(n * k, seed: 2)
        var c = [Float](repeating: 0, count: m * n)
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        let reps = options.repetitions(flops > 1e11 ? 3 : 10)
        var cells: [String] = []
        var matmulCells: [String] = []
        let weight = BenchTensor(rows: n, cols: k, dtype: .bf16, seed: 3)
        for threads in threadCounts {
            let lib = c.withUnsafeMutableBufferPointer { cb in
                bestOf(reps) {
                    BLAS.sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: cb.baseAddress!, ldc: n,
                               threads: threads)
                }
            }
            luhd_blas_set_threads(Int32(threads))
            let raw = c.withUnsafeMutableBufferPointer { cb in
                bestOf(reps) {
                    luhd_sgemm(0, 1, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(k), 0, cb.baseAddress!, Int32(n))
                }
            }
            luhd_blas_set_threads(1)
            let mm = c.withUnsafeMutableBufferPointer { cb in
                bestOf(reps) {
                    MatMul.linear(a, rows: m, weight: weight.view, into: cb.baseAddress!, context: ComputeContext(threads: threads))
                }
            }
            cells += [fmt(flops / lib / 1e9), fmt(flops / raw / 1e9)]
            matmulCells.append(fmt(flops / mm / 1e9))
        }
        md += "| \(m)×\(n)×\(k) | " + cells.joined(separator: " | ") + " | " + matmulCells.joined(separator: " | ") + " |\n"
        print("sgemm \(m)×\(n)×\(k) done")
    }

    // --- memory bandwidth and matrix-vector streaming ---
    let count = (options.quick ? 256 : 1024) << 18   // floats: 256 MiB or 1 GiB
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    let fillParts = chunks(count, parts: 64)
    let bp = SendablePointer(buffer)
    parallelFor(fillParts.count, threads: maxThreads) { p in
        for i in fillParts[p] { bp.p[i] = Float(i & 1023) * 1e-3 }
    }
    var readGBs: [Int: Double] = [:]
    for threads in threadCounts {
        readGBs[threads] = ReadBandwidth.measure(UnsafeRawPointer(buffer), bytes: count * 4, threads: threads,
                                                 repeats: options.repetitions(3)) / 1e9
    }
    print("read bandwidth done")

    let rows = 11008, cols = 4096
    let matrices = options.quick ? 2 : 6
    md += "\nMatrix-vector streaming (m = 1) over \(matrices) weights of \(rows)×\(cols) "
        + "(\(Int(Double(matrices * rows * cols * 2) / 1e6)) MB in BF16), GB/s of weights read, against a plain "
        + "SIMD read of \((count * 4) >> 20) MiB:\n\n"
    md += "| | " + threadCounts.map { "\($0) thread\($0 > 1 ? "s" : "")" }.joined(separator: " | ") + " |\n"
    md += "|---|" + String(repeating: "---|", count: threadCounts.count) + "\n"
    md += "| memory read (sum) | " + threadCounts.map { fmt(readGBs[$0] ?? 0) }.joined(separator: " | ") + " |\n"
    let x = randomFloats(256 * cols, seed: 5)
    var y = [Float](repeating: 0, count: 256 * rows)
    for dtype in [DType.bf16, .f16, .f32] {
        let n = dtype == .f32 ? max(1, matrices / 2) : matrices
        let weights = (0..<n).map { BenchTensor(rows: rows, cols: cols, dtype: dtype, seed: UInt32(10 + $0)) }
        var cells: [String] = []
        for threads in threadCounts {
            let context = ComputeContext(threads: threads)
            let t = y.withUnsafeMutableBufferPointer { yb in
                bestOf(options.repetitions(3)) {
                    for w in weights { MatMul.linear(x, rows: 1, weight: w.view, into: yb.baseAddress!, context: context) }
                }
            }
            cells.append(fmt(Double(n * rows * cols * dtype.size) / t / 1e9))
        }
        md += "| \(dtype.rawValue) matrix-vector | " + cells.joined(separator: " | ") + " |\n"
        print("\(dtype.rawValue) matvec done")
    }

    // --- around the matrix-vector / sgemm switch ---
    let w = BenchTensor(rows: rows, cols: cols, dtype: .bf16, seed: 42)
    let ms = options.quick ? [1, 16, 64, 65] : [1, 4, 16, 32, 64, 65, 96, 128, 256]
    md += "\n`MatMul.linear`, BF16 \(rows)×\(cols), \(maxThreads) threads: milliseconds per call by rows m "
        + "(m ≤ \(MatMul.matvecMaxRows): matrix-vector kernels; above: widened tiles + sgemm):\n\n"
    md += "| m | " + ms.map(String.init).joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: ms.count) + "\n"
    var times: [String] = []
    for m in ms {
        let t = y.withUnsafeMutableBufferPointer { yb in
            bestOf(options.repetitions(5)) {
                MatMul.linear(x, rows: m, weight: w.view, into: yb.baseAddress!, context: ComputeContext(threads: maxThreads))
            }
        }
        times.append(fmt(t * 1000))
    }
    md += "| ms | " + times.joined(separator: " | ") + " |\n"
    md += vectorKernelTimings(options, threadCounts: threadCounts)
    return md
}

/// Milliseconds per call of the other shared kernels at the model's shapes.
private func vectorKernelTimings(_ options: BenchOptions, threadCounts: [Int]) -> String {
    var md = "\nOther kernels at model shapes, milliseconds per call (best of N):\n\n"
    md += "| kernel | " + threadCounts.map { "\($0)T" }.joined(separator: " | ") + " |\n|---|"
        + String(repeating: "---|", count: threadCounts.count) + "\n"
    let c = 1024
    let big = randomFloats(c * 96 * 96, seed: 7)
    var out = big   // in-place kernels run on (and keep transforming) this copy
    let gamma = randomFloats(4096, seed: 8), beta = randomFloats(4096, seed: 9)
    let cases: [(String, (Int) -> Void)] = [
        ("bicubic CHW 1024×24×24 → 48×48", { t in
            out.withUnsafeMutableBufferPointer { o in
                TorchResample.bicubic(big, layout: .chw, channels: c, height: 24, width: 24, outHeight: 48, outWidth: 48,
                                      into: o.baseAddress!, threads: t)
            }
        }),
        ("bicubic CHW 1024×48×48 → 96×96", { t in
            out.withUnsafeMutableBufferPointer { o in
                TorchResample.bicubic(big, layout: .chw, channels: c, height: 48, width: 48, outHeight: 96, outWidth: 96,
                                      into: o.baseAddress!, threads: t)
            }
        }),
        ("bicubic HWC 48×48×1024 → 96×96", { t in
            out.withUnsafeMutableBufferPointer { o in
                TorchResample.bicubic(big, layout: .hwc, channels: c, height: 48, width: 48, outHeight: 96, outWidth: 96,
                                      into: o.baseAddress!, threads: t)
            }
        }),
        ("LayerNorm 577×1024", { t in
            out.withUnsafeMutableBufferPointer { o in
                Normalization.layerNorm(big, rows: 577, cols: 1024, gamma: gamma, beta: beta, eps: 1e-5, into: o.baseAddress!, threads: t)
            }
        }),
        ("RMSNorm 1×4096", { t in
            out.withUnsafeMutableBufferPointer { o in
                Normalization.rmsNorm(big, rows: 1, cols: 4096, gamma: gamma, eps: 1e-5, into: o.baseAddress!, threads: t)
            }
        }),
        ("softmax 16×577 rows of 577", { t in
            out.withUnsafeMutableBufferPointer { o in
                Activation.softmaxRows(o.baseAddress!, rows: 16 * 577, cols: 577, threads: t)
            }
        }),
        ("quick GELU 577×4096", { t in
            out.withUnsafeMutableBufferPointer { o in
                Activation.quickGelu(o.baseAddress!, count: 577 * 4096, threads: t)
            }
        }),
        ("GELU (erf) 96×96×81", { t in
            out.withUnsafeMutableBufferPointer { o in
                Activation.geluErf(o.baseAddress!, count: 96 * 96 * 81, threads: t)
            }
        }),
        ("SiLU·up 11008", { t in
            out.withUnsafeMutableBufferPointer { o in
                Activation.siluMultiply(o.baseAddress!, by: big, count: 11008, threads: t)
            }
        }),
    ]
    for (name, body) in cases {
        let cells = threadCounts.map { t in fmt(bestOf(options.repetitions(10)) { body(t) } * 1000) }
        md += "| \(name) | " + cells.joined(separator: " | ") + " |\n"
    }
    return md
}
