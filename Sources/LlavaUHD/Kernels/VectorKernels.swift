import CLlavaUHD

/// The SIMD kernels of Sources/CLlavaUHD (kernels_avx512.c, kernels_avx2.c), chosen once from
/// CPUID: AVX-512 (F/BW/VL/DQ) where present, else AVX2+FMA+F16C (the library's baseline).
/// The typed wrappers (`MatMul`, `Normalization`, `Activation`, `FloatConversion`,
/// `TorchResample`) are the API; this names what runs underneath.
package enum VectorKernels {
    /// The instruction set of the kernels in use: "avx512" or "avx2".
    package static var isa: String { String(cString: luhd_kernels_best().pointee.isa) }

    /// The kernel table in use.
    @inline(__always)
    static var table: luhd_kernels { luhd_kernels_best().pointee }

    /// Runs `body` over `0..<count` in contiguous ranges, on up to `threads` threads when the
    /// work is large enough (`count ≥ minimumPerThread · 2`); ranges never change results of the
    /// elementwise kernels (their tails use the same arithmetic as their bodies).
    static func forEachRange(_ count: Int, threads: Int, minimumPerThread: Int = 1 << 14,
                             _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count / max(1, minimumPerThread))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let ranges = chunks(count, parts: parts * 4)
        parallelFor(ranges.count, threads: threads) { body(ranges[$0]) }
    }
}
