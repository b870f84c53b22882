import Foundation
@testable import LlavaUHD
import Testing
import TestSupport

/// `CausalAttention` on random inputs against a float64 reference (scores, softmax and the
/// weighted sum of the values in double precision, over the key/value values as the cache stores
/// them, i.e. after their 16-bit rounding), for float32 / F16 / BF16 caches, grouped and plain
/// heads, with and without earlier cache positions, and row counts that take the decoding path,
/// one block of the prefill path, and several blocks with a partial one. Prefill rows are checked
/// on both prefill paths: the fused kernel (`CausalAttention.flash`, CPUs with AVX-512, where
/// `compute` takes it) and `blocked` (sgemm, the other CPUs').
///
/// Stated bound: max|out − ref| ≤ 2e-5 · max|v| (float32 sums of ≤ 128 products and a softmax
/// over ≤ 1031 keys, which 16-bit caches' decoding rows take in up to 16 stretches combined by
/// their exponential weights, and the fused prefill kernel in blocks of 48 keys with its running
/// sums rescaled once per block: a few units of 2⁻²⁴ per term; measured ≤ 1e-6). Results are
/// bit-identical on 1 and 2 threads, a decoding row's are the same alone as among others, and
/// (fused kernel) a prefill row's are the same whatever the split of the prefill into calls.
@Suite struct CausalAttentionTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let heads, kvHeads, headDim, start, rows: Int
        var testDescription: String { "\(heads)/\(kvHeads) heads × \(headDim), start \(start), \(rows) rows" }
    }

    static let shapes = [
        Shape(heads: 4, kvHeads: 2, headDim: 64, start: 0, rows: 300),
        Shape(heads: 4, kvHeads: 4, headDim: 32, start: 37, rows: 129),
        Shape(heads: 6, kvHeads: 2, headDim: 16, start: 11, rows: 3),
        Shape(heads: 2, kvHeads: 1, headDim: 64, start: 0, rows: 128),
        Shape(heads: 4, kvHeads: 2, headDim: 64, start: 700, rows: 2),
        Shape(heads: 3, kvHeads: 3, headDim: 40, start: 1027, rows: 4),
        Shape(heads: 7, kvHeads: 1, headDim: 128, start: 90, rows: 150),
        Shape(heads: 2, kvHeads: 2, headDim: 40, start: 5, rows: 61),
    ]
    static let bound: Double = 2e-5

    /// The layer's keys and values stored in a one-layer cache of `type`, and the queries.
    struct Inputs {
        let cache: KVCache
        let queries: [Float]
        let shape: Shape
    }

    static func inputs(_ s: Shape, type: KVCacheType, seed: UInt64) throws -> Inputs {
        let config = LanguageModelConfig(
            architecture: .llama, hiddenSize: s.heads * s.headDim, intermediateSize: 8, layerCount: 1,
            headCount: s.heads, kvHeadCount: s.kvHeads, vocabSize: 8, rmsNormEps: 1e-6, ropeTheta: 10000,
            maxPositionEmbeddings: 4096, tieWordEmbeddings: false, bosTokenId: nil, eosTokenIds: [])
        let positions = s.start + s.rows
        let cache = try KVCache(config: config, capacity: positions, type: type)
        var random = TestRandom(seed: seed)
        let width = s.kvHeads * s.headDim
        let k = random.floats(positions * width, -2, 2), v = random.floats(positions * width, -1, 1)
        k.withUnsafeBufferPointer { cache.keys(layer: 0).store($0.baseAddress!, rows: positions, at: 0) }
        v.withUnsafeBufferPointer { cache.values(layer: 0).store($0.baseAddress!, rows: positions, at: 0) }
        return Inputs(cache: cache, queries: random.floats(s.rows * s.heads * s.headDim, -2, 2), shape: s)
    }

    /// The attention of `rows` query rows from `row` on (all of them by default), at their
    /// positions, by `compute` or (`blocked`) by the sgemm prefill path.
    static func attention(_ input: Inputs, threads: Int, row: Int = 0, rows: Int? = nil, blocked: Bool = false) -> [Float] {
        let s = input.shape, width = s.heads * s.headDim, n = rows ?? s.rows
        var out = [Float](repeating: .nan, count: n * width)
        input.queries.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                if blocked {
                    CausalAttention.blocked(queries: q.baseAddress! + row * width, rows: n, queryStride: width, start: s.start + row,
                                            keys: input.cache.keys(layer: 0), values: input.cache.values(layer: 0),
                                            heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim,
                                            out: o.baseAddress!, outStride: width, threads: threads)
                } else {
                    CausalAttention.compute(queries: q.baseAddress! + row * width, rows: n, queryStride: width, start: s.start + row,
                                            keys: input.cache.keys(layer: 0), values: input.cache.values(layer: 0),
                                            heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim,
                                            out: o.baseAddress!, outStride: width, context: testContext(threads: threads))
                }
            }
        }
        return out
    }

    /// The float64 reference over the stored (rounded) keys and values.
    static func reference(_ input: Inputs) -> [Double] {
        let s = input.shape, width = s.heads * s.headDim, kvWidth = s.kvHeads * s.headDim
        let positions = s.start + s.rows
        var k = [Float](repeating: 0, count: positions * kvWidth), v = k
        k.withUnsafeMutableBufferPointer { input.cache.keys(layer: 0).widen(rows: positions, column: 0, width: kvWidth, into: $0.baseAddress!) }
        v.withUnsafeMutableBufferPointer { input.cache.values(layer: 0).widen(rows: positions, column: 0, width: kvWidth, into: $0.baseAddress!) }
        let scale = 1 / Double(s.headDim).squareRoot()
        var out = [Double](repeating: 0, count: s.rows * width)
        for r in 0..<s.rows {
            for h in 0..<s.heads {
                let g = h / (s.heads / s.kvHeads), visible = s.start + r + 1
                var scores = (0..<visible).map { j in
                    (0..<s.headDim).reduce(0.0) { $0 + Double(input.queries[r * width + h * s.headDim + $1]) * Double(k[j * kvWidth + g * s.headDim + $1]) } * scale
                }
                let top = scores.max()!
                scores = scores.map { Foundation.exp($0 - top) }
                let sum = scores.reduce(0, +)
                for d in 0..<s.headDim {
                    out[r * width + h * s.headDim + d] = (0..<visible).reduce(0.0) { $0 + scores[$1] * Double(v[$1 * kvWidth + g * s.headDim + d]) } / sum
                }
            }
        }
        return out
    }

    @Test(arguments: shapes, [KVCacheType.float32, .float16, .bfloat16])
    func matchesFloat64Reference(_ shape: Shape, _ type: KVCacheType) throws {
        let input = try Self.inputs(shape, type: type, seed: UInt64(shape.rows * 31 + shape.start))
        let two = Self.attention(input, threads: 2)
        let one = Self.attention(input, threads: 1)
        #expect(two.map(\.bitPattern) == one.map(\.bitPattern), "results depend on the thread count")
        let ref = Self.reference(input)
        let worst = zip(two, ref).map { abs(Double($0) - $1) }.max() ?? .infinity
        print("causal attention \(shape.testDescription), \(type) cache: max error \(worst) (bound \(Self.bound) · max|v| = 1)")
        #expect(!two.contains { $0.isNaN })
        #expect(worst <= Self.bound)
    }

    /// The sgemm prefill path (`blocked`), which `compute` does not take on CPUs with AVX-512,
    /// against the same reference and bound.
    @Test(arguments: shapes.filter { $0.rows > CausalAttention.directMaxRows }, [KVCacheType.float32, .float16, .bfloat16])
    func blockedPrefillMatchesFloat64Reference(_ shape: Shape, _ type: KVCacheType) throws {
        let input = try Self.inputs(shape, type: type, seed: UInt64(shape.rows * 31 + shape.start))
        let two = Self.attention(input, threads: 2, blocked: true)
        let one = Self.attention(input, threads: 1, blocked: true)
        #expect(two.map(\.bitPattern) == one.map(\.bitPattern), "results depend on the thread count")
        let ref = Self.reference(input)
        let worst = zip(two, ref).map { abs(Double($0) - $1) }.max() ?? .infinity
        print("causal attention (sgemm prefill) \(shape.testDescription), \(type) cache: max error \(worst) (bound \(Self.bound))")
        #expect(!two.contains { $0.isNaN })
        #expect(worst <= Self.bound)
    }

    /// The fused prefill kernel: a row's result is the same bits whether its prefill comes in one
    /// call or split into smaller prefills (calls of more than `directMaxRows` rows each, at
    /// uneven boundaries that cut its tiles and key blocks anywhere), i.e. a function of the row's
    /// own visible positions only.
    @Test(.enabled(if: CausalAttention.flashAvailable),
          arguments: shapes.filter { $0.rows > 2 * CausalAttention.directMaxRows + 2 }, [KVCacheType.float32, .float16, .bfloat16])
    func prefillRowsEqualRowsOfSmallerPrefills(_ shape: Shape, _ type: KVCacheType) throws {
        let input = try Self.inputs(shape, type: type, seed: UInt64(shape.rows * 13 + shape.start))
        let all = Self.attention(input, threads: 2), width = shape.heads * shape.headDim
        let sizes = [5, 50, 7, 49, 16, 33]
        var row = 0, call = 0, pieces: [Float] = []
        while row < shape.rows {
            let left = shape.rows - row, size = sizes[call % sizes.count]
            let n = left - size <= CausalAttention.directMaxRows ? left : size   // every call > directMaxRows rows
            pieces += Self.attention(input, threads: 2, row: row, rows: n)
            row += n
            call += 1
        }
        #expect(pieces.map(\.bitPattern) == all.map(\.bitPattern))
        #expect(pieces.count == shape.rows * width)
    }

    /// A decoding row (the direct path, at most `CausalAttention.directMaxRows` rows) gets the same
    /// bits alone as among other rows: what batched decoding (one row per sequence) relies on.
    @Test(arguments: shapes.filter { $0.rows <= CausalAttention.directMaxRows }, [KVCacheType.float32, .float16, .bfloat16])
    func decodingRowAloneMatchesRowAmongOthers(_ shape: Shape, _ type: KVCacheType) throws {
        let input = try Self.inputs(shape, type: type, seed: UInt64(shape.rows * 17 + shape.start))
        let all = Self.attention(input, threads: 2), width = shape.heads * shape.headDim
        for r in 0..<shape.rows {
            let alone = Self.attention(input, threads: 2, row: r, rows: 1)
            #expect(alone.map(\.bitPattern) == all[(r * width)..<((r + 1) * width)].map(\.bitPattern), "row \(r)")
        }
    }

    /// A float32 cache's decoding rows (`CausalAttention.float32Rows`, which reads the cache by
    /// rows: the scores by stretches of positions, the values by runs of heads) are the same bits
    /// as their definition computed one (row, head) at a time: `dot(q, k_j) · scale` over the
    /// visible positions, `Activation.softmaxRows`, then `accumulate(p_j, v_j)` from zero in
    /// position order (the path's former form, one task per head reading its slice of every row).
    /// The last shape (4096 values a row) takes two runs of heads.
    @Test(arguments: shapes.filter { $0.rows <= CausalAttention.directMaxRows }
        + [Shape(heads: 32, kvHeads: 8, headDim: 128, start: 200, rows: 2)])
    func float32DecodingMatchesPerHeadDefinition(_ shape: Shape) throws {
        let input = try Self.inputs(shape, type: .float32, seed: UInt64(shape.rows * 13 + shape.start))
        let s = shape, width = s.heads * s.headDim, group = s.heads / s.kvHeads
        let keys = input.cache.keys(layer: 0).floats, values = input.cache.values(layer: 0).floats, stride = s.kvHeads * s.headDim
        let scale = Float(1 / Double(s.headDim).squareRoot())
        var expected = [Float](repeating: 0, count: s.rows * width)
        input.queries.withUnsafeBufferPointer { q in
            expected.withUnsafeMutableBufferPointer { out in
                for r in 0..<s.rows {
                    for h in 0..<s.heads {
                        let visible = s.start + r + 1, g = h / group
                        var p = (0..<visible).map { j in
                            dot(q.baseAddress! + r * width + h * s.headDim, keys + j * stride + g * s.headDim, s.headDim) * scale
                        }
                        p.withUnsafeMutableBufferPointer { Activation.softmaxRows($0.baseAddress!, rows: 1, cols: visible) }
                        let y = out.baseAddress! + r * width + h * s.headDim
                        for j in 0..<visible { CausalAttention.accumulate(p[j], values + j * stride + g * s.headDim, into: y, count: s.headDim) }
                    }
                }
            }
        }
        for threads in [1, 2] {
            #expect(Self.attention(input, threads: threads).map(\.bitPattern) == expected.map(\.bitPattern), "\(threads) thread(s)")
        }
    }
}
