#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import Testing
import TestSupport

/// Sampling against a reference written here from transformers' logits processors
/// (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
/// TopPLogitsWarper, MinPLogitsWarper: masks over the whole vocabulary, applied in generate's
/// order), and the draws against their distribution with a fixed seed.
@Suite struct TokenSamplerTests {
    /// Deterministic test logits: a 64-bit LCG (Knuth's MMIX constants) mapped to [-4, 4).
    static func logits(count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 11) * 0x1p-53 * 8 - 4)
        }
    }

    /// transformers' processing, step by step over the whole vocabulary (−inf = removed).
    static func reference(_ logits: [Float], _ p: SamplingParameters, history: [Int]) -> [Int: Double] {
        var scores = logits
        if p.repetitionPenalty != 1 {
            let window = p.penaltyWindow == 0 ? history : Array(history.suffix(p.penaltyWindow))
            for id in Set(window) where id >= 0 && id < scores.count {
                scores[id] = logits[id] < 0 ? logits[id] * p.repetitionPenalty : logits[id] / p.repetitionPenalty
            }
        }
        scores = scores.map { $0 / p.temperature }
        func softmax(_ s: [Float]) -> [Double] {
            let m = Double(s.max()!)
            let e = s.map { $0 == -.infinity ? 0 : exp(Double($0) - m) }
            let z = e.reduce(0, +)
            return e.map { $0 / z }
        }
        if p.topK > 0 {
            let kth = scores.sorted(by: >)[min(p.topK, scores.count) - 1]
            scores = scores.map { $0 < kth ? -.infinity : $0 }
        }
        if p.topP < 1 {
            let probs = softmax(scores)
            let ascending = probs.indices.sorted { probs[$0] != probs[$1] ? probs[$0] < probs[$1] : $0 > $1 }
            var cumulative = 0.0
            for (rank, i) in ascending.enumerated() {
                cumulative += probs[i]
                if cumulative <= 1 - Double(p.topP), rank < ascending.count - 1 { scores[i] = -.infinity }
            }
        }
        if p.minP > 0 {
            let probs = softmax(scores)
            let top = probs.max()!
            for i in probs.indices where probs[i] < Double(p.minP) * top { scores[i] = -.infinity }
        }
        let probs = softmax(scores)
        var out: [Int: Double] = [:]
        for i in probs.indices where scores[i] > -.infinity { out[i] = probs[i] }
        return out
    }

    static let settings: [SamplingParameters] = [
        SamplingParameters(temperature: 0.7),
        SamplingParameters(temperature: 1, topK: 5),
        SamplingParameters(temperature: 0.9, topP: 0.8),
        SamplingParameters(temperature: 1.3, minP: 0.1),
        SamplingParameters(temperature: 1, topK: 12, topP: 0.9, minP: 0.05, repetitionPenalty: 1.3),
        SamplingParameters(temperature: 0.6, topP: 0.5, repetitionPenalty: 1.8, penaltyWindow: 3),
    ]

    @Test(arguments: 0..<settings.count)
    func truncationMatchesTransformersReference(_ index: Int) throws {
        let p = Self.settings[index]
        let history = [3, 7, 7, 20, -200, 41, 3, 9]
        for seed in UInt64(1)...20 {
            let logits = Self.logits(count: 48, seed: seed)
            let expected = Self.reference(logits, p, history: history)
            let got = try TokenSampler(p).distribution(logits: logits, history: history)
            #expect(Set(got.map(\.id)) == Set(expected.keys), "setting \(index), logits \(seed)")
            for c in got { #expect(abs(c.probability - (expected[c.id] ?? -1)) <= 1e-9) }
            #expect(zip(got, got.dropFirst()).allSatisfy { $0.probability >= $1.probability })
            if index > 0 { #expect(got.count < logits.count, "setting \(index) truncated nothing") }
        }
    }

    @Test func drawsFollowTheDistribution() throws {
        let logits: [Float] = [1.0, 2.5, 0.3, 2.2, -1.0, 1.7, 0.0, 2.4]
        let p = SamplingParameters(temperature: 0.8, topK: 5, seed: 42)
        var sampler = try TokenSampler(p)
        let expected = Self.reference(logits, p, history: [])
        let n = 60_000
        var counts = [Int](repeating: 0, count: logits.count)
        for _ in 0..<n { counts[try sampler.sample(logits: logits)] += 1 }
        for (id, c) in counts.enumerated() {
            guard let q = expected[id] else {
                #expect(c == 0, "token \(id) is outside the top 5 but was drawn")
                continue
            }
            let sigma = (q * (1 - q) / Double(n)).squareRoot()
            #expect(abs(Double(c) / Double(n) - q) <= 5 * sigma, "token \(id): \(Double(c) / Double(n)) vs \(q)")
        }
    }

    @Test func seedsReproduceDraws() throws {
        let logits = Self.logits(count: 100, seed: 7)
        func draws(_ seed: UInt64) throws -> [Int] {
            var s = try TokenSampler(SamplingParameters(temperature: 1.5, seed: seed))
            return try (0..<200).map { _ in try s.sample(logits: logits) }
        }
        #expect(try draws(1) == draws(1))
        #expect(try draws(1) != draws(2))
        var a = Xoshiro256StarStar(seed: 99), b = Xoshiro256StarStar(seed: 99)
        for _ in 0..<10 { #expect(a.next() == b.next()) }
        for _ in 0..<1000 { let u = a.nextUnitDouble(); #expect(u >= 0 && u < 1) }
    }

    @Test func greedyTakesTheLowestIdOnTiesAndAppliesThePenalty() throws {
        var greedy = try TokenSampler(.greedy)
        #expect(try greedy.sample(logits: [1, 3, 3, 2]) == 1)
        #expect(try greedy.sample(logits: [.nan, 0, -1]) == 1)
        // Penalty 2 on ids {0, 1} (−200 and 99 are ignored): [2, −2, 1, 0.5] → [1, −4, 1, 0.5].
        var penalized = try TokenSampler(SamplingParameters(repetitionPenalty: 2))
        #expect(try penalized.sample(logits: [2, -2, 1, 0.5], history: [0, 1, 1, -200, 99]) == 0)
        let d = try TokenSampler(SamplingParameters(temperature: 1, repetitionPenalty: 2))
            .distribution(logits: [2, -2, 1, 0.5], history: [0, 1, 1, -200, 99])
        let z = exp(1.0) + exp(-4.0) + exp(1.0) + exp(0.5)
        for c in d { #expect(abs(c.probability - [exp(1.0), exp(-4.0), exp(1.0), exp(0.5)][c.id] / z) <= 1e-12) }
        // A window of 1 looks only at the last token.
        var windowed = try TokenSampler(SamplingParameters(repetitionPenalty: 10, penaltyWindow: 1))
        #expect(try windowed.sample(logits: [3, 2, 2.5], history: [2, 0]) == 2)
    }

    @Test func rejectsBadParameters() {
        for p in [SamplingParameters(temperature: -1), SamplingParameters(topK: -1), SamplingParameters(topP: 0),
                  SamplingParameters(topP: 1.5), SamplingParameters(minP: -0.1), SamplingParameters(repetitionPenalty: 0),
                  SamplingParameters(penaltyWindow: -2), SamplingParameters(temperature: .infinity)] {
            let e = #expect(throws: LlavaError.self) { try TokenSampler(p) }
            #expect(e?.status == .invalidArgument)
        }
        var s = try? TokenSampler(.greedy)
        #expect(throws: LlavaError.self) { try s?.sample(logits: []) }
    }
}
