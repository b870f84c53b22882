import Foundation
import LlavaUHD
import Testing
import TestSupport

/// Prefill of a Q4_K_M-style GGUF LLM through the int8 K-format products (x quantized per 256:
/// `Int8ProductKernel.avx2` on AVX2 CPUs, `.vnni` on AVX-512 VNNI ones) against exact f32
/// arithmetic (the AVX2 f32 kernels forced: dequantization + sgemm): a 2-layer LLaMA file written
/// here with llama.cpp's Q4_K_M mix (Q4_K embeddings and projections, Q6_K attn_v, ffn_down and
/// output; random quants with fixed f16 factors making zero-mean weights of about 0.06 RMS, so
/// that activations keep their scale and attention is not near one-hot, where any rounding could
/// move a position's softmax to another key; F32 norms). The int8 products are W·x~ within
/// 1e-5·Σ|w·x~| (the kernel tests); what x~ loses end to end depends on the weights: on trained
/// fixtures x per 32 costs about 2 % of max|logit| (QuantizedDecoderTests, GGUFDecoderTests), on
/// these random ones more. So the logits at all 40 prompt positions must be within 0.1·max|logit|
/// of the exact ones (measured 5.1e-2 on Zen 3), and within twice the error of the same file with
/// every matrix Q8_0, whose int8 product takes x per 32 (measured 3.5e-2: the ratio, 1.45, is
/// about what the largest of 256 Gaussian values against the largest of 32 predicts, 1.4).
/// The same holds for the file with Q2_K in place of Q4_K (a Q2_K-style mix: Q2_K embeddings and
/// projections, Q6_K attn_v, ffn_down and output), whose int8 product on AVX2 takes x per 256 too
/// (on AVX-512 VNNI per 32).
@Suite struct KQuantGGUFPrefillTests {
    static let hidden = 256, intermediate = 512, layers = 2, heads = 4, kvHeads = 2, vocab = 300

    /// The GGUF v3 bytes of the model (`seed` picks the random quants; `main`: the format of the
    /// embeddings and of the projections the Q4_K_M mix keeps in Q4_K, Q4_K or Q2_K).
    static func ggufBytes(seed: UInt64, main: QuantFormat = .q4_K, allQ8: Bool = false) -> [UInt8] {
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func str(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }
        var kv: [[UInt8]] = [str("general.architecture") + u32(8) + str("llama")]
        for (k, v) in [("block_count", layers), ("context_length", 256), ("embedding_length", hidden),
                       ("feed_forward_length", intermediate), ("attention.head_count", heads), ("attention.head_count_kv", kvHeads)] {
            kv.append(str("llama." + k) + u32(4) + u32(UInt32(v)))
        }
        kv.append(str("llama.attention.layer_norm_rms_epsilon") + u32(6) + u32(Float(1e-5).bitPattern))
        kv.append(str("llama.rope.freq_base") + u32(6) + u32(Float(10000).bitPattern))
        // (name, [rows, columns] or [count], format)
        var tensors: [(String, [Int], QuantFormat)] = [("token_embd.weight", [vocab, hidden], main),
                                                       ("output.weight", [vocab, hidden], .q6_K),
                                                       ("output_norm.weight", [hidden], .f32)]
        let kvWidth = hidden / heads * kvHeads
        for l in 0..<layers {
            let p = "blk.\(l)."
            tensors += [(p + "attn_norm.weight", [hidden], .f32), (p + "ffn_norm.weight", [hidden], .f32),
                        (p + "attn_q.weight", [hidden, hidden], main), (p + "attn_k.weight", [kvWidth, hidden], main),
                        (p + "attn_v.weight", [kvWidth, hidden], .q6_K), (p + "attn_output.weight", [hidden, hidden], main),
                        (p + "ffn_gate.weight", [intermediate, hidden], main), (p + "ffn_up.weight", [intermediate, hidden], main),
                        (p + "ffn_down.weight", [hidden, intermediate], .q6_K)]
        }
        var random = TestRandom(seed: seed)
        var infos: [UInt8] = [], data: [UInt8] = []
        for (name, shape, stored) in tensors {
            let format = allQ8 && stored != .f32 ? QuantFormat.q8_0 : stored
            while data.count % 32 != 0 { data.append(0) }
            infos += str(name) + u32(UInt32(shape.count))
            for d in shape.reversed() { infos += u64(UInt64(d)) }
            infos += u32(UInt32(format.ggmlType)) + u64(UInt64(data.count))
            if format == .f32 {
                for _ in 0..<shape[0] { data += u32(random.uniform(0.8, 1.2).bitPattern) }
                continue
            }
            var bytes = (0..<(shape[0] * shape[1] / format.blockElements * format.blockBytes)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            for block in stride(from: 0, to: bytes.count, by: format.blockBytes) {
                // Q4_K: f16 d = 2⁻¹² and dmin = 7.5·2⁻¹² first (d·sc·q − dmin·m has mean 0 over
                // random bytes); Q2_K: d = 2⁻⁸ and dmin = 1.5·2⁻⁸ last (mean 0 too, about 0.054
                // RMS); Q6_K: f16 d = 2⁻¹⁴ last.
                let fields: [(Int, UInt16)] = switch format {
                case .q4_K: [(0, 0x0C00), (2, 0x1780)]
                case .q2_K: [(80, 0x1C00), (82, 0x1E00)]
                case .q8_0: [(0, 0x1400)]
                default: [(208, 0x0400)]
                }
                for (at, h) in fields {
                    bytes[block + at] = UInt8(h & 0xFF)
                    bytes[block + at + 1] = UInt8(h >> 8)
                }
            }
            data += bytes
        }
        var file = Array("GGUF".utf8) + u32(3) + u64(UInt64(tensors.count)) + u64(UInt64(kv.count))
        for e in kv { file += e }
        file += infos
        while file.count % 32 != 0 { file.append(0) }
        return file + data
    }

    /// The worst logit error (relative to max|logit|) over 40 prompt positions of the decoder of
    /// the file (`main` as in `ggufBytes`; `allQ8`: every matrix Q8_0) with the CPU's int8 products
    /// against the AVX2 f32 kernels forced.
    static func prefillError(main: QuantFormat = .q4_K, allQ8: Bool) throws -> Float {
        let path = NSTemporaryDirectory() + "luhd-q4km-\(UInt64.random(in: 0..<UInt64.max)).gguf"
        try Data(Self.ggufBytes(seed: 21, main: main, allQ8: allQ8)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let gguf = try GGUFFile(path: path)
        let decoder = try TransformerDecoder(gguf: gguf)
        #expect(decoder.matrixFormats == (allQ8 ? ["Q8_0": 1 + 7 * Self.layers]
                                                : [main.rawValue: 5 * Self.layers, "Q6_K": 1 + 2 * Self.layers]))
        let exact = try TransformerDecoder(gguf: gguf, quantizedKernel: .f32AVX2)
        var random = TestRandom(seed: 5)
        let prompt = (0..<40).map { _ in Int(random.next() % UInt64(Self.vocab)) }
        let context = testContext()
        let got = try decoder.eval(tokens: prompt, cache: KVCache(config: decoder.config, capacity: 64), logits: .all, context: context)
        let want = try exact.eval(tokens: prompt, cache: KVCache(config: exact.config, capacity: 64), logits: .all, context: context)
        var worst: Float = 0
        for p in 0..<prompt.count {
            let range = (p * Self.vocab)..<((p + 1) * Self.vocab)
            worst = max(worst, relativeMaxError(Array(got[range]), Array(want[range])))
        }
        return worst
    }

    /// The Q4_K_M mix (`main` Q4_K) and the Q2_K mix: within 0.1·max|logit| of exact f32, and,
    /// where the CPU's int8 product takes `main` (it must then have run), within twice the error of
    /// the all-Q8_0 file (x per 32).
    @Test(arguments: [QuantFormat.q4_K, .q2_K])
    func prefillWithinTheBoundOfExact(main: QuantFormat) throws {
        let product = Int8ProductKernel.preferred(for: main, features: Int8ProductKernel.hostFeatures)
        let mix = try Self.prefillError(main: main, allQ8: false), perBlock = try Self.prefillError(allQ8: true)
        print("GGUF prefill, 40 positions, int8 product \(product.map { "\($0)" } ?? "none"): logits within \(mix) "
              + "of exact f32 (relative to max|logit|) for the \(main.rawValue) mix, \(perBlock) for all Q8_0 (x per 32)")
        #expect(mix <= 0.1)
        guard product != nil else { return }
        #expect(mix > 0, "the int8 product did not run")
        #expect(mix <= 2 * perBlock, "the \(main.rawValue) mix loses more than twice what x per 32 does")
    }
}
