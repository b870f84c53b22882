import LlavaUHD

/// BF16 test operands: float32 values rounded to bf16 bits (to nearest even, as the releases
/// store their weights) and bf16 bits widened exactly, for float64 references of the products
/// against BF16 weights.
package enum BFloat16Operands {
    /// The bf16 bits of `f` rounded to nearest even (finite inputs).
    package static func bits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// The exact value of bf16 bits `h`.
    package static func widen(_ h: UInt16) -> Double { Double(Float(bitPattern: UInt32(h) << 16)) }

    /// `m × k` float32 values of x uniform in [-2, 2] and `n × k` BF16 weights uniform in
    /// [-0.1, 0.1]; `body` gets x, the weights' bits and a `[n, k]` BF16 `TensorView` of them.
    package static func withRandom<R>(m: Int, n: Int, k: Int,
                                      _ body: ([Float], [UInt16], TensorView) throws -> R) rethrows -> R {
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(m * k)).map { _ in Float.random(in: -2...2, using: &rng) }
        let w = (0..<(n * k)).map { _ in bits(Float.random(in: -0.1...0.1, using: &rng)) }
        let owner = Owner()
        return try w.withUnsafeBytes { raw in
            try body(x, w, TensorView(name: "w", dtype: .bf16, shape: [n, k], data: raw.baseAddress!, owner: owner))
        }
    }

    private final class Owner {}
}
