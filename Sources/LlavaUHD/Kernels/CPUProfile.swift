#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD

/// What this CPU can do and how fast it does the arithmetic the kernels choose between: the
/// one home of the facts that pick a kernel. Features come from CPUID (`luhd_cpu`); where they
/// do not decide (a CPU with AVX512_BF16 may run bf16 products faster than float32, as AMD Zen 4
/// does, or slower, as Intel Emerald Rapids does), a short calibration measures them.
///
/// The calibration runs once per process, on first use of `current` (a model loaded with
/// `Precision.fast` asks for it), on one thread: best of `calibrationRounds` runs of a product of
/// `calibrationShape` in float32, in bf16 (with AVX512_BF16) and in int8 (with the CPU's int8
/// product, AVX-512 VNNI or AVX2: `Int8ProductKernel`; the weight quantized to Q8_0 beforehand as
/// `Int8Product` does at load), a few milliseconds in all.
public struct CPUProfile: Sendable, CustomStringConvertible {
    /// Instruction-set extensions the kernels dispatch on.
    public struct Features: Sendable, Equatable {
        public var avx2 = false, fma = false, f16c = false
        /// AVX-512 F, BW, VL and DQ together (what the AVX-512 kernels need).
        public var avx512 = false
        public var avx512VNNI = false, avx512BF16 = false, avx512FP16 = false, avxVNNI = false

        /// No features; set the ones a test or a replayed machine has.
        public init() {}

        /// The features of the CPU this process runs on.
        public static var host: Features {
            let c = luhd_cpu().pointee
            var f = Features()
            f.avx2 = c.avx2 != 0
            f.fma = c.fma != 0
            f.f16c = c.f16c != 0
            f.avx512 = c.avx512f != 0 && c.avx512bw != 0 && c.avx512vl != 0 && c.avx512dq != 0
            f.avx512VNNI = c.avx512_vnni != 0
            f.avx512BF16 = c.avx512_bf16 != 0
            f.avx512FP16 = c.avx512_fp16 != 0
            f.avxVNNI = c.avx_vnni != 0
            return f
        }

        /// The features present, by their CPUID names.
        public var names: [String] {
            [("avx2", avx2), ("fma", fma), ("f16c", f16c), ("avx512", avx512), ("avx512_vnni", avx512VNNI),
             ("avx512_bf16", avx512BF16), ("avx512_fp16", avx512FP16), ("avx_vnni", avxVNNI)]
                .filter(\.1).map(\.0)
        }
    }

    /// Rows × output columns × inner length of the calibration product (a prefill-sized tile:
    /// large enough to reach the kernels' steady state, small enough to stay in cache).
    public static let calibrationShape = (m: 64, n: 384, k: 1024)
    /// Runs of each product; the fastest counts (the machine may be shared).
    public static let calibrationRounds = 7

    public let features: Features
    /// Measured rate of one thread's float32 matrix product (sgemm), GFLOP/s.
    public let float32ProductRate: Double
    /// Measured rate of one thread's bf16 matrix product (`BF16Product`), GFLOP/s; nil without
    /// AVX512_BF16.
    public let bfloat16ProductRate: Double?
    /// Measured rate of one thread's int8 matrix product against a Q8_0 copy (`Int8Product`:
    /// x quantized on the fly, AVX-512 VNNI or AVX2), multiply-adds × 2 per second in G; nil
    /// without an int8 product (`Int8Product.isAvailable`).
    public let int8ProductRate: Double?

    /// A profile from known figures (tests, or a benchmark replaying another machine).
    public init(features: Features, float32ProductRate: Double, bfloat16ProductRate: Double?,
                int8ProductRate: Double? = nil) {
        self.features = features
        self.float32ProductRate = float32ProductRate
        self.bfloat16ProductRate = bfloat16ProductRate
        self.int8ProductRate = int8ProductRate
    }

    /// This CPU, measured once per process.
    public static let current: CPUProfile = measure()

    /// Measures this CPU (see `calibrationShape`).
    public static func measure() -> CPUProfile {
        let features = Features.host
        let (m, n, k) = calibrationShape
        let flop = 2.0 * Double(m * n * k)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
        let wb = UnsafeMutablePointer<UInt16>.allocate(capacity: n * k)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { x.deallocate(); w.deallocate(); wb.deallocate(); y.deallocate() }
        for i in 0..<(m * k) { x[i] = Float((i * 7919) % 257) / 257 - 0.5 }
        for i in 0..<(n * k) { w[i] = Float((i * 104729) % 263) / 263 - 0.5 }
        FloatConversion.narrowToBFloat16(w, count: n * k, into: wb)
        let float32: () -> Void = {
            BLAS.sgemm(transB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: y, ldc: n, threads: 1)
        }
        var bfloat16: (() -> Void)?
        var int8: (() -> Void)?
        let owner = CalibrationBuffer()
        let tensor = TensorView(name: "calibration", dtype: .bf16, shape: [n, k], data: UnsafeRawPointer(wb), owner: owner)
        if BF16Product.isAvailable {
            bfloat16 = { BF16Product.linear(x, rows: m, weight: tensor, into: y, ldOut: n, threads: 1) }
        }
        if Int8Product.isAvailable, let q8 = Int8Product.quantize([tensor], threads: 1) {
            let context = ComputeContext(threads: 1)
            int8 = { MatMul.linear(x, rows: m, weight: q8, into: y, context: context) }
        }
        // Warm up (loads OpenBLAS, faults in the buffers), then alternate so all see the same
        // background load.
        float32()
        bfloat16?()
        int8?()
        var best32 = Double.infinity, best16 = Double.infinity, best8 = Double.infinity
        for _ in 0..<calibrationRounds {
            best32 = min(best32, seconds(float32))
            if let bfloat16 { best16 = min(best16, seconds(bfloat16)) }
            if let int8 { best8 = min(best8, seconds(int8)) }
        }
        return CPUProfile(features: features, float32ProductRate: flop / best32 / 1e9,
                          bfloat16ProductRate: bfloat16 == nil ? nil : flop / best16 / 1e9,
                          int8ProductRate: int8 == nil ? nil : flop / best8 / 1e9)
    }

    /// Seconds one call of `body` takes (monotonic clock).
    static func seconds(_ body: () -> Void) -> Double {
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        body()
        clock_gettime(CLOCK_MONOTONIC, &t1)
        return Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) * 1e-9
    }

    /// How `Precision.fast` multiplies activations with dense weights on this CPU: bf16 only
    /// where it was measured at least `fastMargin` times faster than float32, else float32
    /// (so fast is never slower than exact).
    public var fastMatrixArithmetic: MatrixArithmetic {
        guard features.avx512BF16, let bf16 = bfloat16ProductRate, bf16 >= float32ProductRate * Self.fastMargin else {
            return .float32
        }
        return .bfloat16
    }

    /// How `Precision.fast` multiplies activations with dense weights in the vision tower
    /// (`CLIPVisionEncoder`, whose weights can take a load-time Q8_0 copy): int8 where the CPU's
    /// int8 product is AVX-512 VNNI's (`Int8ProductKernel.vnni`, 4 times float32's arithmetic per
    /// instruction) and it measured at least `fastMargin` times faster than float32, else
    /// `fastMatrixArithmetic`. Not with the AVX2 int8 product (`vpmaddubsw` + `vpmaddwd`, whose
    /// sign trick for Q8_0 leaves about 1.2 times float32's FMA rate): on Zen 3 (EPYC, 2 threads)
    /// the whole vision stage of a 7-view photo ran only 1.16 times faster with it, and its
    /// projector output left the 2e-2 bound of FastVisionTests on an upstream case
    /// (coffee-v2-mask7: 0.0215; BENCHMARKS.md notes:vision10).
    public var fastVisionArithmetic: MatrixArithmetic {
        if Int8ProductKernel.preferred(for: .q8_0, features: features) == .vnni, let int8 = int8ProductRate,
           int8 >= float32ProductRate * Self.fastMargin {
            return .int8
        }
        return fastMatrixArithmetic
    }

    /// How much faster a reduced-precision product must measure to be chosen: enough that the
    /// calibration's noise cannot pick a slower one.
    public static let fastMargin = 1.15

    public var description: String {
        func tenths(_ x: Double) -> String { "\((x * 10).rounded() / 10)" }
        let bf16 = bfloat16ProductRate.map(tenths) ?? "n/a", int8 = int8ProductRate.map(tenths) ?? "n/a"
        return "CPU features [\(features.names.joined(separator: " "))]; one-thread products: float32 \(tenths(float32ProductRate)) GFLOP/s, "
            + "bf16 \(bf16) GFLOP/s, int8 \(int8) GOP/s; fast = \(fastMatrixArithmetic.rawValue), fast vision = \(fastVisionArithmetic.rawValue)"
    }
}

/// Keeps the calibration's weight alive for its `TensorView` (which needs an owner).
private final class CalibrationBuffer {}
