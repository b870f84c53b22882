#if canImport(Glibc)
import Glibc
#endif

/// Chooses tokens from logits by `SamplingParameters` (see there for the steps and whose
/// semantics they follow), holding the random stream so that successive draws continue it.
///
/// A draw: the candidates left after the penalty, temperature and truncations are ordered by
/// probability (highest first, lower id first on ties); u = `nextUnitDouble()` picks the first
/// candidate whose running probability sum exceeds u × (sum of all candidates), with
/// probabilities computed in double precision.
package struct TokenSampler: Sendable {
    package let parameters: SamplingParameters
    private var random: Xoshiro256StarStar

    /// Throws `.invalidArgument` for parameters out of range.
    package init(_ parameters: SamplingParameters) throws(LlavaError) {
        try parameters.validate()
        self.parameters = parameters
        random = Xoshiro256StarStar(seed: parameters.seed)
    }

    /// A sampler that continues a saved random stream (`random`): `.invalidArgument` for
    /// parameters out of range.
    package init(_ parameters: SamplingParameters, random: Xoshiro256StarStar) throws(LlavaError) {
        try parameters.validate()
        self.parameters = parameters
        self.random = random
    }

    /// The random stream as it stands (what the next draw continues).
    package var randomStream: Xoshiro256StarStar { random }

    /// A token and its probability after the sampling steps.
    package struct Candidate: Sendable, Equatable {
        package var id: Int
        package var probability: Double
    }

    /// The next token for `logits` (`[vocab]`), with `history` the tokens so far (the
    /// penalty's input; ids outside the vocabulary, such as the image marker −200, are
    /// ignored). Only ids below `choosable` (default: all) can be chosen: a model's embedding
    /// table may have rows past its tokenizer's vocabulary (Qwen2: 151936 rows, 151646 tokens),
    /// and those ids have no text. Throws `.invalidArgument` for empty logits, `.badWeights`
    /// when no choosable logit is a number above −∞ (a model whose weights produce NaN).
    package mutating func sample(logits: [Float], history: [Int] = [], choosable: Int? = nil) throws(LlavaError) -> Int {
        let logits = choosable.map { $0 < logits.count ? Array(logits.prefix(max(0, $0))) : logits } ?? logits
        guard !logits.isEmpty else { throw LlavaError(.invalidArgument, "sampling: no logits") }
        guard logits.contains(where: { $0 > -.infinity }) else {
            throw LlavaError(.badWeights, "sampling: none of the \(logits.count) logits is a number above −∞ (all NaN or −∞); the model's weights produce no usable distribution")
        }
        let scores = penalized(logits, history: history)
        if parameters.isGreedy { return Self.argmax(scores) }
        let candidates = truncated(scores)
        let u = random.nextUnitDouble()
        let total = candidates.reduce(0) { $0 + $1.probability }
        var running = 0.0
        for c in candidates {
            running += c.probability
            if running > u * total { return c.id }
        }
        return candidates[candidates.count - 1].id
    }

    /// The distribution a sampling draw picks from: the candidates that survive every step,
    /// highest probability first, probabilities summing to 1. With temperature 0 it is the
    /// greedy token alone.
    package func distribution(logits: [Float], history: [Int] = []) -> [Candidate] {
        guard !logits.isEmpty else { return [] }
        let scores = penalized(logits, history: history)
        if parameters.isGreedy { return [Candidate(id: Self.argmax(scores), probability: 1)] }
        return truncated(scores)
    }

    /// The logits after the repetition penalty.
    func penalized(_ logits: [Float], history: [Int]) -> [Float] {
        let penalty = parameters.repetitionPenalty
        guard penalty != 1, !history.isEmpty else { return logits }
        var scores = logits
        let window = parameters.penaltyWindow == 0 ? history[...] : history.suffix(parameters.penaltyWindow)
        var seen = Set<Int>()
        for id in window where id >= 0 && id < scores.count && seen.insert(id).inserted {
            let l = logits[id]
            scores[id] = l > 0 ? l / penalty : l * penalty
        }
        return scores
    }

    /// Temperature, top-k, top-p and min-p, then the softmax of what is left.
    ///
    /// A temperature so small that some logit / t overflows to +∞ (t = 1e−38), or a logit of
    /// +∞, leaves all the mass on the largest logit: the result is then the greedy token alone
    /// (instead of a softmax of ∞ − ∞ = NaN that would pick an arbitrary token).
    func truncated(_ scores: [Float]) -> [Candidate] {
        let t = parameters.temperature
        // Candidates by scaled score, highest first (lower id first on ties); −inf and NaN never survive.
        var ranked: [(id: Int, score: Float)] = []
        ranked.reserveCapacity(scores.count)
        for (id, l) in scores.enumerated() {
            let s = l / t
            if s == .infinity { return [Candidate(id: Self.argmax(scores), probability: 1)] }
            if s > -.infinity { ranked.append((id, s)) }
        }
        if ranked.isEmpty { return [Candidate(id: Self.argmax(scores), probability: 1)] }
        ranked.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }

        // Top-k: keep scores ≥ the k-th largest.
        if parameters.topK > 0, parameters.topK < ranked.count {
            let threshold = ranked[parameters.topK - 1].score
            var keep = parameters.topK
            while keep < ranked.count, ranked[keep].score >= threshold { keep += 1 }
            ranked.removeSubrange(keep...)
        }
        var probabilities = Self.softmax(ranked.map(\.score))

        // Top-p: keep a token while the mass of the tokens ranked above it is below p.
        if parameters.topP < 1 {
            var above = 0.0, keep = 0
            while keep < ranked.count, above < Double(parameters.topP) {
                above += probabilities[keep]
                keep += 1
            }
            keep = max(keep, 1)
            if keep < ranked.count {
                ranked.removeSubrange(keep...)
                probabilities = Self.softmax(ranked.map(\.score))
            }
        }

        // Min-p: drop probabilities below minP × the top probability.
        if parameters.minP > 0 {
            let threshold = Double(parameters.minP) * probabilities[0]
            var keep = 1
            while keep < ranked.count, probabilities[keep] >= threshold { keep += 1 }
            if keep < ranked.count {
                ranked.removeSubrange(keep...)
                probabilities = Self.softmax(ranked.map(\.score))
            }
        }
        return zip(ranked, probabilities).map { Candidate(id: $0.id, probability: $1) }
    }

    /// exp(s − max) / Σ, in double precision, for scores sorted highest first.
    static func softmax(_ scores: [Float]) -> [Double] {
        guard let top = scores.first else { return [] }
        let e = scores.map { exp(Double($0) - Double(top)) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// Index of the largest value, the lowest index on ties (torch.argmax); NaNs are skipped.
    package static func argmax(_ x: [Float]) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        var found = false
        for (i, v) in x.enumerated() where !v.isNaN && (!found || v > bestValue) {
            best = i
            bestValue = v
            found = true
        }
        return best
    }
}
