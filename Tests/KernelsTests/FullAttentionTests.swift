import Foundation
@testable import LlavaUHD
import Testing
import TestSupport

/// `FullAttention` (the fused AVX2 kernel of unmasked attention, which the CLIP ViT takes on
/// CPUs whose best vector kernels are AVX2) on random inputs against a float64 reference
/// (scores, softmax and the weighted sum of the values in double precision), for the ViT's head
/// (577 tokens × 64) and token counts and head sizes that leave partial key panels, a partial
/// group of query rows and a last value slice of 8 columns. The head sits at a column offset
/// inside wider q | k | v rows, as in the encoder.
///
/// Stated bound: max|out − ref| ≤ 2e-5 · max|v| (float32 sums of ≤ 128 products per score, a
/// softmax over ≤ 577 keys whose exponentials are summed in double, and the value sums in chains
/// of 64 keys: a few units of 2⁻²⁴ per term; measured ≤ 1e-6), as `CausalAttentionTests` states
/// for the decoder's attention. Results do not depend on what the work buffer held (it is
/// filled with NaN first), and rows with scores in the thousands (exponentials that underflow)
/// still come out finite and within the bound.
@Suite(.enabled(if: FullAttention.isAvailable)) struct FullAttentionTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let tokens, headDim: Int
        /// Range of the query and key values (±), which sets how peaked the softmax is.
        let spread: Float
        var testDescription: String { "\(tokens) tokens × \(headDim), q/k in ±\(spread)" }
    }

    static let shapes = [
        Shape(tokens: 577, headDim: 64, spread: 2),
        Shape(tokens: 1, headDim: 64, spread: 2),
        Shape(tokens: 17, headDim: 8, spread: 2),
        Shape(tokens: 50, headDim: 24, spread: 2),
        Shape(tokens: 145, headDim: 40, spread: 2),
        Shape(tokens: 300, headDim: 128, spread: 2),
        Shape(tokens: 101, headDim: 64, spread: 30),
    ]
    static let bound: Double = 2e-5
    /// Heads in a row of the test's q | k | v matrix; the test's head is head 1.
    static let heads = 3

    struct Inputs {
        let qkv: [Float]
        let shape: Shape
        var stride: Int { 3 * FullAttentionTests.heads * shape.headDim }
    }

    static func inputs(_ s: Shape, seed: UInt64) -> Inputs {
        var random = TestRandom(seed: seed)
        let width = heads * s.headDim
        var qkv = [Float](repeating: 0, count: s.tokens * 3 * width)
        for r in 0..<s.tokens {
            for c in 0..<width {
                qkv[r * 3 * width + c] = random.uniform(-s.spread, s.spread)
                qkv[r * 3 * width + width + c] = random.uniform(-s.spread, s.spread)
                qkv[r * 3 * width + 2 * width + c] = random.uniform(-1, 1)
            }
        }
        return Inputs(qkv: qkv, shape: s)
    }

    /// Head 1's attention by the kernel, `[tokens, headDim]`, with a work buffer filled with `fill`.
    static func attention(_ input: Inputs, fill: Float) -> [Float] {
        let s = input.shape, d = s.headDim, width = heads * d
        var out = [Float](repeating: .nan, count: s.tokens * d)
        var work = [Float](repeating: fill, count: FullAttention.workFloats(tokens: s.tokens, headDim: d))
        input.qkv.withUnsafeBufferPointer { qkv in
            out.withUnsafeMutableBufferPointer { o in
                work.withUnsafeMutableBytes { w in
                    let base = qkv.baseAddress! + d
                    FullAttention.run(q: base, k: base + width, v: base + 2 * width, stride: input.stride, tokens: s.tokens,
                                      headDim: d, scale: 1 / Float(d).squareRoot(), out: o.baseAddress!, outStride: d,
                                      work: w.baseAddress!)
                }
            }
        }
        return out
    }

    /// The float64 reference of head 1.
    static func reference(_ input: Inputs) -> [Double] {
        let s = input.shape, d = s.headDim, width = heads * d, ld = input.stride
        let scale = 1 / Double(d).squareRoot()
        func at(_ r: Int, _ part: Int, _ c: Int) -> Double { Double(input.qkv[r * ld + part * width + d + c]) }
        var out = [Double](repeating: 0, count: s.tokens * d)
        for r in 0..<s.tokens {
            var scores = (0..<s.tokens).map { j in (0..<d).reduce(0.0) { $0 + at(r, 0, $1) * at(j, 1, $1) } * scale }
            let top = scores.max()!
            scores = scores.map { Foundation.exp($0 - top) }
            let sum = scores.reduce(0, +)
            for c in 0..<d {
                out[r * d + c] = (0..<s.tokens).reduce(0.0) { $0 + scores[$1] * at($1, 2, c) } / sum
            }
        }
        return out
    }

    @Test(arguments: shapes)
    func matchesFloat64Reference(_ shape: Shape) {
        let input = Self.inputs(shape, seed: UInt64(shape.tokens * 131 + shape.headDim))
        let out = Self.attention(input, fill: .nan)
        let again = Self.attention(input, fill: 1e30)
        #expect(out.map(\.bitPattern) == again.map(\.bitPattern), "results depend on the work buffer's old contents")
        let ref = Self.reference(input)
        let worst = zip(out, ref).map { abs(Double($0) - $1) }.max() ?? .infinity
        print("full attention \(shape.testDescription): max error \(worst) (bound \(Self.bound) · max|v| = 1)")
        #expect(!out.contains { !$0.isFinite })
        #expect(worst <= Self.bound)
    }
}
