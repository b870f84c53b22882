import Foundation
@testable import LlavaUHD
import Synchronization
import Testing
import TestSupport

/// Batched decoding (`DecodeBatcher`): sequences that decode at the same time on their own
/// threads share each pass over the weights, and every sequence's greedy tokens and every
/// step's logits are bit for bit the ones a decoder without batching (max batch 1) gives it
/// alone. Checked with float weights (F32 safetensors, BF16 GGUF), Q8_0 and Q4_0 (ModelQuantizer)
/// and a K-quant (Q4_K matrices, a synthetic grouped-query model), each sequence with its own
/// prompt length and KV cache type, in batches of 4 (Q8_0 and Q4_0 also 5, 6 and 8: the kernels
/// take groups of 4 and the rest; the gathering policy waits for all of them so the batches are
/// known to form; `largestBatch` proves they did). Cancelling one sequence in the
/// middle of batched steps, and one sequence stopping early, leave the others' results unchanged.
@Suite(.serialized) struct BatchedDecodeTests {
    static let sequences = 4
    static let steps = 10
    static let cacheTypes: [KVCacheType] = [.float32, .bfloat16, .float16, .float32, .bfloat16, .float32, .float16, .float32]

    /// Greedy tokens and every step's logits (the prompt's first).
    struct Trace: Equatable, Sendable {
        var tokens: [Int] = []
        var logits: [[Float]] = []
    }

    /// Prompts of different lengths (so the sequences sit at different positions).
    static func prompts(vocab: Int) -> [[Int]] {
        var random = TestRandom(seed: 14)
        return [3, 7, 12, 5, 9, 4, 10, 6].map { n in (0..<n).map { _ in random.next(vocab) } }
    }

    /// Prefill `prompt`, then `steps` greedy one-position steps.
    static func decode(_ decoder: TransformerDecoder, prompt: [Int], type: KVCacheType, steps: Int = steps,
                       context: ComputeContext = testContext()) throws -> Trace {
        let cache = try KVCache(config: decoder.config, capacity: prompt.count + steps + 1, type: type)
        var trace = Trace()
        var logits = try decoder.eval(tokens: prompt, cache: cache, context: context)
        trace.logits.append(logits)
        for _ in 0..<steps {
            let t = TokenSampler.argmax(logits)
            trace.tokens.append(t)
            logits = try decoder.eval(tokens: [t], cache: cache, context: context)
            trace.logits.append(logits)
        }
        return trace
    }

    /// Runs `sequences` prompts alone on a decoder without batching and together (one thread
    /// each) on one with batching, and compares.
    static func check(_ name: String, sequences: Int = sequences,
                      _ make: (_ maxBatch: Int) throws -> TransformerDecoder) throws {
        let serial = try make(1)
        let prompts = Array(Self.prompts(vocab: serial.config.vocabSize).prefix(sequences))
        let expected = try prompts.indices.map { i in try decode(serial, prompt: prompts[i], type: cacheTypes[i]) }
        #expect(serial.decodeBatcher.statistics.passes == 0)

        let batched = try make(8)
        batched.decodeBatcher.gatherPolicy = .waitFor(count: sequences, timeout: 5)
        let results = Mutex([Result<Trace, LlavaError>?](repeating: nil, count: sequences))
        onThreads(sequences) { i in
            let r: Result<Trace, LlavaError>
            do { r = .success(try decode(batched, prompt: prompts[i], type: cacheTypes[i])) } catch { r = .failure(error as? LlavaError ?? LlavaError(.internal, "\(error)")) }
            results.withLock { $0[i] = r }
        }
        let stats = batched.decodeBatcher.statistics
        print("\(name): \(stats.passes) passes for \(stats.requests) steps, largest batch \(stats.largestBatch)")
        #expect(stats.largestBatch == sequences)
        #expect(stats.requests == sequences * steps)
        for i in 0..<sequences {
            let got = try #require(results.withLock { $0[i] }).get()
            #expect(got.tokens == expected[i].tokens, "\(name) sequence \(i)")
            for (s, (a, b)) in zip(got.logits, expected[i].logits).enumerated() {
                #expect(bitIdentical(a, b), "\(name) sequence \(i) step \(s)")
            }
        }
    }

    @Test func float32Weights() throws {
        let dir = Fixtures.root + "/hf/llama"
        let config = try huggingFaceConfig(dir)
        try Self.check("F32") { max in try TransformerDecoder(config: config, weights: WeightStore(directory: dir), maxDecodeBatch: max) }
    }

    @Test func bfloat16Weights() throws {
        let gguf = try GGUFFile(path: GGUFDecoderTests.fixture("qwen2-bf16"))
        try Self.check("BF16") { max in try TransformerDecoder(gguf: gguf, maxDecodeBatch: max) }
    }

    @Test(arguments: [QuantFormat.q8_0, .q4_0])
    func modelQuantizerWeights(_ format: QuantFormat) throws {
        let dir = Fixtures.root + "/hf/qwen2"
        let config = try huggingFaceConfig(dir)
        let qdir = try QuantizedDecoderTests.quantized(dir, format)
        defer { try? FileManager.default.removeItem(atPath: qdir) }
        try Self.check(format.rawValue) { max in
            try TransformerDecoder(config: config, weights: WeightStore(directory: qdir), maxDecodeBatch: max)
        }
        // 5, 6 and 8 rows (8: the decoder's default largest batch): the kernels take them in groups
        // of 4 and the rest over blocks of weight rows.
        for sequences in [5, 6, 8] {
            try Self.check(format.rawValue + " ×\(sequences)", sequences: sequences) { max in
                try TransformerDecoder(config: config, weights: WeightStore(directory: qdir), maxDecodeBatch: max)
            }
        }
        // The float32 kernels forced (x not quantized) batch the same way.
        try Self.check(format.rawValue + " f32AVX2", sequences: 5) { max in
            try TransformerDecoder(config: config, weights: WeightStore(directory: qdir), quantizedKernel: .f32AVX2,
                                   maxDecodeBatch: max)
        }
    }

    @Test func kQuantWeights() throws {
        let source = SyntheticQuantizedSource(format: .q4_K, seed: 6)
        try Self.check("Q4_K") { max in
            try TransformerDecoder(config: source.config, source: source, batchSize: 1024, arithmetic: .float32,
                                   quantizedKernel: nil, maxDecodeBatch: max)
        }
    }

    /// The decoder's load-time copies of its Q4_0, Q8_0, IQ4_XS, Q3_K, Q4_K, Q5_K and Q6_K matrices (row-interleaved on int8 VNNI
    /// CPUs, scale-grouped on int8 AVX2 ones: `InterleavingDecoderSource`, with the preferred
    /// kernels) give the bits of the same kernels on the stored bytes (the kernel forced: no
    /// copies): a 37-token prompt (the int8 prefill product, on the grouped copy from tiles put
    /// back in the stored layout), its last logits and 6 greedy steps (the matrix-vector kernels);
    /// and batched decoding on the copies matches serial decoding (`check`). Hidden 256 and
    /// intermediate 512: every matrix has a copy.
    @Test(arguments: [QuantFormat.q4_0, .q8_0, .iq4_xs, .q3_K, .q4_K, .q5_K, .q6_K])
    func loadTimeCopiesGiveTheStoredBits(format: QuantFormat) throws {
        let source = SyntheticQuantizedSource(format: format, seed: 9)
        func decoder(_ kernel: QuantKernel?, batch: Int) throws -> TransformerDecoder {
            try TransformerDecoder(config: source.config, source: source, batchSize: 1024, arithmetic: .float32,
                                   quantizedKernel: kernel, maxDecodeBatch: batch)
        }
        var random = TestRandom(seed: 4)
        let prompt = (0..<37).map { _ in 3 + random.next(source.config.vocabSize - 3) }
        /// Greedy tokens, then the prompt's last logits followed by the last step's.
        func run(_ d: TransformerDecoder) throws -> (tokens: [Int], logits: [Float]) {
            let cache = try KVCache(config: d.config, capacity: prompt.count + 8)
            let first = try d.eval(tokens: prompt, cache: cache, context: testContext())
            var logits = first, tokens: [Int] = []
            for _ in 0..<6 {
                tokens.append(TokenSampler.argmax(logits))
                logits = try d.eval(tokens: [tokens.last!], cache: cache, context: testContext())
            }
            return (tokens, first + logits)
        }
        let forced = try decoder(QuantKernel.preferred(for: format), batch: 1), preferred = try decoder(nil, batch: 1)
        func layout(_ w: LinearWeight) -> RepackedLayout? { if case .quantized(let q) = w { q.interleavedLayout } else { nil } }
        // The VNNI kernels' row-interleaved copies exist for Q4_0, Q8_0 and Q4_K only.
        let expected: RepackedLayout? = QuantKernel.preferred(for: format) == .int8AVX2 ? .scaleGroups
            : [.q4_0, .q8_0, .q4_K].contains(format) ? .rowBlocks : nil
        #expect(layout(preferred.lmHead) == expected && layout(preferred.layers[1].downProj) == expected, "\(format): copies made")
        #expect(layout(forced.lmHead) == nil, "\(format): no copies with a forced kernel")
        let stored = try run(forced), copied = try run(preferred)
        #expect(copied.tokens == stored.tokens && bitIdentical(copied.logits, stored.logits), "\(format): copies changed the bits")
        try Self.check(format.rawValue + " copies") { max in try decoder(nil, batch: max) }
    }

    /// Four sequences batched: sequence 2's abort callback fires (and stays raised until it
    /// sees the error) after 30 polls, wherever it is then (leading a pass, or waiting in
    /// another's), or at the latest once it has decoded as many steps as the others: it decodes
    /// 10 more, alone once the others are done, so it leads a pass and polls before each layer
    /// even on a machine fast enough to poll fewer than 30 times before; sequence 3 stops after 3 steps and drops its cache. Sequence 2 must get
    /// `.cancelled` with its cache unchanged, then continue from where it was to the same
    /// result as alone; the others must be unaffected, and nothing may hang.
    @Test func cancellationAndEarlyExitInABatch() throws {
        let dir = Fixtures.root + "/hf/llama"
        let config = try huggingFaceConfig(dir)
        let serial = try TransformerDecoder(config: config, weights: WeightStore(directory: dir), maxDecodeBatch: 1)
        let prompts = Self.prompts(vocab: config.vocabSize)
        @Sendable func steps(_ i: Int) -> Int { i == 3 ? 3 : i == 2 ? Self.steps + 10 : Self.steps }
        let expected = try prompts.indices.map { i in
            try Self.decode(serial, prompt: prompts[i], type: Self.cacheTypes[i], steps: steps(i))
        }
        let batched = try TransformerDecoder(config: config, weights: WeightStore(directory: dir), maxDecodeBatch: 8)
        batched.decodeBatcher.gatherPolicy = .waitFor(count: Self.sequences, timeout: 0.2)

        struct Outcome: Sendable { var trace = Trace(); var cancellations = 0; var error: LlavaError? }
        let outcomes = Mutex([Outcome](repeating: Outcome(), count: Self.sequences))
        onThreads(Self.sequences) { i in
            let polls = Atomic<Int>(0), decoded = Atomic<Int>(0), armed = Atomic<Bool>(i == 2)
            let context = testContext(abort: {
                (polls.add(1, ordering: .relaxed).newValue >= 30 || decoded.load(ordering: .relaxed) >= Self.steps)
                    && armed.load(ordering: .relaxed)
            })
            var outcome = Outcome()
            do {
                let steps = steps(i)
                let cache = try KVCache(config: config, capacity: prompts[i].count + steps + 1, type: Self.cacheTypes[i])
                var logits = try batched.eval(tokens: prompts[i], cache: cache, context: context)
                outcome.trace.logits.append(logits)
                while outcome.trace.tokens.count < steps {
                    let t = TokenSampler.argmax(logits)
                    let before = cache.count
                    do {
                        logits = try batched.eval(tokens: [t], cache: cache, context: context)
                    } catch let error as LlavaError where error.status == .cancelled {
                        #expect(cache.count == before, "a cancelled step must leave the cache as it was")
                        outcome.cancellations += 1
                        armed.store(false, ordering: .relaxed)
                        continue
                    }
                    outcome.trace.tokens.append(t)
                    outcome.trace.logits.append(logits)
                    decoded.store(outcome.trace.tokens.count, ordering: .relaxed)
                }
            } catch {
                outcome.error = error as? LlavaError ?? LlavaError(.internal, "\(error)")
            }
            let final = outcome
            outcomes.withLock { $0[i] = final }
        }
        #expect(batched.decodeBatcher.statistics.largestBatch == Self.sequences)
        for i in 0..<Self.sequences {
            let o = outcomes.withLock { $0[i] }
            #expect(o.error == nil, "sequence \(i): \(String(describing: o.error))")
            #expect(o.cancellations == (i == 2 ? 1 : 0), "sequence \(i)")
            #expect(o.trace.tokens == Array(expected[i].tokens.prefix(steps(i))), "sequence \(i)")
            for (s, (a, b)) in zip(o.trace.logits, expected[i].logits).enumerated() {
                #expect(bitIdentical(a, b), "sequence \(i) step \(s)")
            }
        }
    }

    /// With the automatic policy nothing waits for absent sequences: a lone sequence runs every
    /// step as a pass of one.
    @Test func loneSequenceRunsAlone() throws {
        let dir = Fixtures.root + "/hf/llama"
        let config = try huggingFaceConfig(dir)
        let decoder = try TransformerDecoder(config: config, weights: WeightStore(directory: dir))
        let trace = try Self.decode(decoder, prompt: [1, 5, 9], type: .float32)
        let stats = decoder.decodeBatcher.statistics
        #expect(trace.tokens.count == Self.steps)
        #expect(stats.passes == Self.steps && stats.largestBatch == 1)
    }
}

/// True when both arrays hold the same floats bit for bit.
func bitIdentical(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// A LLaMA-architecture decoder with grouped-query attention (hidden 256, 4 heads over 2
/// key/value heads, 2 layers, vocabulary 300) whose matrices are random blocks of a block
/// format with small fixed scales (norms random around 1): for formats no fixture model has.
struct SyntheticQuantizedSource: DecoderTensorSource {
    final class Storage {
        var buffers: [UnsafeMutableRawPointer] = []
        deinit { for b in buffers { b.deallocate() } }
    }

    let config = LanguageModelConfig(
        architecture: .llama, hiddenSize: 256, intermediateSize: 512, layerCount: 2, headCount: 4, kvHeadCount: 2,
        vocabSize: 300, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 256, tieWordEmbeddings: false,
        bosTokenId: 1, eosTokenIds: [2])
    let format: QuantFormat
    let seed: UInt64
    private let storage = Storage()

    init(format: QuantFormat, seed: UInt64) {
        precondition([.q3_K, .q4_K, .q5_K, .q6_K, .q4_0, .q8_0, .iq4_xs].contains(format),
                     "only Q3_K's, Q4_K's, Q5_K's, Q6_K's, Q4_0's, Q8_0's and IQ4_XS's scale fields are laid out here")
        self.format = format
        self.seed = seed
    }

    func name(_ tensor: DecoderTensor, layer: Int) -> String { SafetensorsDecoderSource.name(tensor, layer: layer) }

    func contains(_ tensor: DecoderTensor, layer: Int) -> Bool {
        switch tensor {
        case .queryBias, .keyBias, .valueBias, .outputBias, .gateBias, .upBias, .downBias: false
        default: !tensor.isPerLayer || layer < config.layerCount
        }
    }

    func matrix(_ tensor: DecoderTensor, layer: Int, shape: [Int]) throws(LlavaError) -> LinearWeight {
        guard let rowBytes = format.rowBytes(columns: shape[1]) else { throw LlavaError(.tensorMismatch, "bad width") }
        let bytes = shape[0] * rowBytes
        let data = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        storage.buffers.append(data)
        var random = TestRandom(seed: seed &+ UInt64(layer * 64) &+ UInt64(DecoderTensor.allCases.firstIndex(of: tensor) ?? 0))
        for i in 0..<bytes { data.storeBytes(of: UInt8(truncatingIfNeeded: random.next()), toByteOffset: i, as: UInt8.self) }
        // Q4_K / Q5_K super-blocks (144 / 176 bytes): f16 d and dmin first. d = 2⁻¹⁰, dmin = 2⁻¹¹. Q6_K
        // super-blocks (210 bytes): f16 d last, 2⁻¹² (random int8 scales); Q3_K super-blocks (110
        // bytes): f16 d last, 2⁻⁹ (random 6-bit scales). Q4_0 / Q8_0 blocks
        // (18 / 34 bytes): f16 d first, 2⁻⁸ / 2⁻¹¹. IQ4_XS super-blocks (136 bytes): f16 d first, 2⁻¹³
        // (random 6-bit scales).
        for block in stride(from: 0, to: bytes, by: format.blockBytes) {
            switch format {
            case .q4_K, .q5_K:
                data.storeBytes(of: UInt16(0x1400), toByteOffset: block, as: UInt16.self)
                data.storeBytes(of: UInt16(0x1000), toByteOffset: block + 2, as: UInt16.self)
            case .q6_K: data.storeBytes(of: UInt16(0x0C00), toByteOffset: block + 208, as: UInt16.self)
            case .q3_K: data.storeBytes(of: UInt16(0x1800), toByteOffset: block + 108, as: UInt16.self)
            case .q4_0: data.storeBytes(of: UInt16(0x1C00), toByteOffset: block, as: UInt16.self)
            case .iq4_xs: data.storeBytes(of: UInt16(0x0800), toByteOffset: block, as: UInt16.self)
            default: data.storeBytes(of: UInt16(0x1000), toByteOffset: block, as: UInt16.self)
            }
        }
        return .quantized(try QuantizedMatrix(name: name(tensor, layer: layer), format: format, rows: shape[0], columns: shape[1],
                                              data: UnsafeRawPointer(data), owner: storage))
    }

    func vector(_ tensor: DecoderTensor, layer: Int, count: Int) throws(LlavaError) -> [Float] {
        var random = TestRandom(seed: seed &+ 1000 &+ UInt64(layer))
        return (0..<count).map { _ in random.uniform(0.8, 1.2) }
    }

    var interleavedRotaryRows: Bool { false }
    var description: String { "synthetic \(format.rawValue) weights" }
}
