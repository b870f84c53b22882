import CLlavaUHD
import LlavaUHD
import TestSupport
import Testing

/// F16 / BF16 conversions against Swift's own `Float16` and a bit-level reference of
/// round-to-nearest-even for BF16 (what PyTorch's `.to(torch.bfloat16)` does).
@Suite struct FloatConversionTests {
    /// Every class of value: random normals over many binades, ties, subnormals, overflow, NaN.
    static let values: [Float] = {
        var rng = TestRandom(seed: 21)
        var v: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude,
                          -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
                          65504, 65519.99, 65520, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5]
        v += (0..<4000).map { _ in rng.uniform(-1, 1) * Float(sign: .plus, exponent: Int(rng.next() % 60) - 30, significand: 1) }
        // Exact BF16 ties (lower 16 bits 0x8000) with even and odd kept bits.
        v += (0..<200).map { i in Float(bitPattern: (UInt32(0x3F80 + i) << 16) | 0x8000) }
        v += (0..<100).map { i in Float(bitPattern: UInt32(i + 1)) }   // subnormals
        return v
    }()

    /// Round-to-nearest-even to BF16, NaN → quiet NaN with the sign kept.
    static func bf16Reference(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(b >> 16) | 0x40 }
        let rounded = (UInt64(b) + 0x7FFF + UInt64((b >> 16) & 1)) >> 16
        return UInt16(truncatingIfNeeded: rounded)
    }

    @Test func narrowingAndWideningMatchReferences() {
        let n = Self.values.count
        for k in [luhd_kernels_avx2(), luhd_kernels_avx512()].compactMap({ $0?.pointee }) {
            var bf = [UInt16](repeating: 0, count: n), h = bf
            Self.values.withUnsafeBufferPointer { src in
                k.narrow_bf16(src.baseAddress!, &bf, n)
                k.narrow_f16(src.baseAddress!, &h, n)
            }
            for i in 0..<n {
                let x = Self.values[i]
                #expect(bf[i] == Self.bf16Reference(x), "bf16 of \(x)")
                let swiftHalf = Float16(x)
                #expect(x.isNaN ? Float16(bitPattern: h[i]).isNaN : h[i] == swiftHalf.bitPattern, "f16 of \(x)")
            }
            var wb = [Float](repeating: 0, count: n), wh = wb
            k.widen_bf16(bf, &wb, n)
            k.widen_f16(h, &wh, n)
            for i in 0..<n {
                let eb = Float(bitPattern: UInt32(bf[i]) << 16)
                #expect(wb[i].bitPattern == eb.bitPattern || (wb[i].isNaN && eb.isNaN))
                let eh = Float(Float16(bitPattern: h[i]))
                #expect(wh[i].bitPattern == eh.bitPattern || (wh[i].isNaN && eh.isNaN))
            }
            // Round trips in place equal narrow-then-widen.
            var rb = Self.values, rh = Self.values
            k.round_bf16(&rb, n)
            k.round_f16(&rh, n)
            for i in 0..<n {
                #expect(rb[i].bitPattern == wb[i].bitPattern || (rb[i].isNaN && wb[i].isNaN))
                #expect(rh[i].bitPattern == wh[i].bitPattern || (rh[i].isNaN && wh[i].isNaN))
            }
        }
    }

    @Test func tensorWideningCoversEveryOffset() {
        var rng = TestRandom(seed: 2)
        let values = rng.floats(1000, -100, 100)
        for dtype in [DType.f32, .f16, .bf16] {
            let (t, exact) = makeTensor(values, shape: [1000], dtype: dtype, misalignment: 2)
            for (from, count) in [(0, 1000), (3, 17), (999, 1), (5, 0), (1, 998)] {
                var out = [Float](repeating: .nan, count: max(count, 1))
                out.withUnsafeMutableBufferPointer { FloatConversion.widen(t, from: from, count: count, into: $0.baseAddress!, threads: 2) }
                #expect(firstDifference(Array(out[0..<count]), Array(exact[from..<(from + count)])) == nil, "\(dtype) \(from)+\(count)")
            }
        }
    }
}
