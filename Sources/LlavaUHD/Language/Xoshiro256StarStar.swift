/// The random stream of token sampling: xoshiro256** (Blackman & Vigna, 2018) with its state
/// filled by four outputs of SplitMix64 from the seed. Deterministic across platforms and
/// builds, so a seed reproduces a generation exactly.
package struct Xoshiro256StarStar: RandomNumberGenerator, Sendable, Equatable {
    private var s0, s1, s2, s3: UInt64

    package init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// The generator at a state `state` recorded (four words, not all zero: the all-zero
    /// state is a fixed point of xoshiro); nil for any other array.
    package init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3])
    }

    /// The four state words, to save a stream and continue it later (`init(state:)`).
    package var state: [UInt64] { [s0, s1, s2, s3] }

    package mutating func next() -> UInt64 {
        let result = rotate(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotate(s3, 45)
        return result
    }

    /// A uniform double in [0, 1): the top 53 bits of `next()` times 2⁻⁵³.
    package mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
