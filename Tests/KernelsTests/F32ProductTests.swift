import LlavaUHD
import Testing
import TestSupport

/// `F32Product` (Sources/CLlavaUHD/f32_gemm.c, AVX-512: 14 x 32 micro-kernel against packed
/// panels) against the definition computed one value at a time, `y[i][c] = Σ_j x[i][j]·W[c][j]`
/// summed in j-order from zero with fused multiply-adds: the kernel promises exactly that chain
/// (blocks of k continue from the stored partial sums), so the two must agree bit for bit,
/// whether x is packed or read in place and whatever the row range of a call. Shapes leave
/// partial row blocks (14) and panels (32), cross the k-block (384) and use strides wider than
/// the rows. Skipped where the CPU has no AVX-512 (the kernel is then never chosen).
@Suite(.enabled(if: F32Product.isAvailable)) struct F32ProductTests {
    /// 64-byte aligned floats (the packed weight and packing buffer need it).
    final class Aligned {
        let p: UnsafeMutablePointer<Float>
        init(_ count: Int) {
            p = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(1, count))
        }
        deinit { p.deallocate() }
    }

    @Test(arguments: [(31, 45, 800), (14, 32, 64), (1, 1, 1), (130, 70, 385), (29, 96, 27)])
    func matchesTheDefinition(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let ldx = k + 3, ldw = k + 5, ldy = n + 2
        var random = TestRandom(seed: UInt64(m * 10_000 + n * 100 + k))
        let x = random.floats(m * ldx), w = random.floats(n * ldw)
        var expected = [Float](repeating: .nan, count: m * ldy)
        for i in 0..<m {
            for c in 0..<n {
                var acc: Float = 0
                for j in 0..<k { acc.addProduct(x[i * ldx + j], w[c * ldw + j]) }
                expected[i * ldy + c] = acc
            }
        }
        // The same weight given transposed, B[j][c] = W[c][j].
        var transposed = [Float](repeating: 0, count: k * (n + 1))
        for c in 0..<n { for j in 0..<k { transposed[j * (n + 1) + c] = w[c * ldw + j] } }
        let packed = Aligned(F32Product.packedFloats(k: k, n: n)), packedT = Aligned(F32Product.packedFloats(k: k, n: n))
        let packing = Aligned(F32Product.packingFloats(rows: m))
        w.withUnsafeBufferPointer { F32Product.pack($0.baseAddress!, ldw: ldw, k: k, n: n, into: packed.p) }
        transposed.withUnsafeBufferPointer { F32Product.pack(transposed: $0.baseAddress!, ldb: n + 1, k: k, n: n, into: packedT.p) }
        for (name, weight, inPlace, split) in [("packed x", packed, false, false), ("x in place", packed, true, false),
                                               ("transposed pack", packedT, false, false), ("rows one by one", packed, false, true)] {
            var out = [Float](repeating: .nan, count: m * ldy)
            x.withUnsafeBufferPointer { xb in
                out.withUnsafeMutableBufferPointer { ob in
                    for (r0, rows) in split ? (0..<m).map { ($0, 1) } : [(0, m)] {
                        F32Product.multiply(xb.baseAddress! + r0 * ldx, ldx: ldx, rows: rows, packed: weight.p, k: k, n: n,
                                            into: ob.baseAddress! + r0 * ldy, ldy: ldy, packing: inPlace ? nil : packing.p)
                    }
                }
            }
            for i in 0..<m {
                for c in 0..<ldy {
                    let index = i * ldy + c
                    if c >= n {
                        #expect(out[index].isNaN, "\(name) \(m)x\(n)x\(k): wrote outside the \(n) columns at (\(i), \(c))")
                    } else {
                        #expect(out[index] == expected[index], "\(name) \(m)x\(n)x\(k) at (\(i), \(c))")
                    }
                }
            }
        }
    }

    /// `CLIPVisionEncoder.blockedAttention` against the same steps done one value at a time:
    /// scores as FMA chains over the head dims times the scale, the library's row softmax,
    /// then the mixing as FMA chains over the keys in order: equal bit for bit. 150 tokens make
    /// a full block of 112 query rows and a partial one; d = 40 leaves a partial panel.
    @Test(arguments: [(150, 64), (150, 40), (5, 64)])
    func attentionMatchesTheSteps(_ shape: (Int, Int)) {
        let (n, d) = shape
        let ld = 3 * d + 7, ldOut = d + 3
        let scale = 1 / Float(d).squareRoot()
        var random = TestRandom(seed: UInt64(n * 100 + d))
        let qkv = random.floats(n * ld, -2, 2)
        var expected = [Float](repeating: .nan, count: n * ldOut)
        var row = [Float](repeating: 0, count: n)
        for i in 0..<n {
            for t in 0..<n {
                var acc: Float = 0
                for j in 0..<d { acc.addProduct(qkv[i * ld + j], qkv[t * ld + d + j]) }
                row[t] = acc * scale
            }
            row.withUnsafeMutableBufferPointer { Activation.softmaxRows($0.baseAddress!, rows: 1, cols: n) }
            for c in 0..<d {
                var acc: Float = 0
                for t in 0..<n { acc.addProduct(row[t], qkv[t * ld + 2 * d + c]) }
                expected[i * ldOut + c] = acc
            }
        }
        let workspace = Aligned(CLIPVisionEncoder.attentionWorkspaceFloats(tokens: n, headDim: d))
        var out = [Float](repeating: .nan, count: n * ldOut)
        qkv.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { o in
                let base = b.baseAddress!
                CLIPVisionEncoder.blockedAttention(q: base, k: base + d, v: base + 2 * d, ld: ld, tokens: n, headDim: d,
                                                   scale: scale, into: o.baseAddress!, ldOut: ldOut, workspace: workspace.p)
            }
        }
        for i in 0..<n {
            for c in 0..<ldOut {
                if c >= d {
                    #expect(out[i * ldOut + c].isNaN, "n \(n) d \(d): wrote outside the head at (\(i), \(c))")
                } else {
                    #expect(out[i * ldOut + c] == expected[i * ldOut + c], "n \(n) d \(d) at (\(i), \(c))")
                }
            }
        }
    }
}
