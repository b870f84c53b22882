/// SplitMix64: the deterministic generator for synthetic benchmark data.
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

    /// Uniform in [0, 1).
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Uniform in [0, 1), double precision.
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// `n` uniform floats in [−0.5, 0.5).
func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix(seed: seed)
    return (0..<n).map { _ in rng.nextFloat() - 0.5 }
}
