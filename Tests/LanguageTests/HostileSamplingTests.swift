import LlavaUHD
import Testing

/// Sampling edge cases of issue 12: ids without text, a tiny positive temperature, logits that
/// hold no number.
@Suite struct HostileSamplingTests {
    /// Ids at or past `choosable` (the tokenizer's vocabulary; Qwen2's embedding table has 290
    /// more rows) are never chosen, greedy or sampled at a high temperature.
    @Test func idsWithoutTextAreNeverChosen() throws {
        var logits = [Float](repeating: 0, count: 151_936)
        for id in 151_646..<151_936 { logits[id] = 50 }  // the rows without text are the most likely
        var greedy = try TokenSampler(.greedy)
        #expect(try greedy.sample(logits: logits, choosable: 151_646) < 151_646)
        var hot = try TokenSampler(SamplingParameters(temperature: 100, seed: 7))
        for _ in 0..<200 { #expect(try hot.sample(logits: logits, choosable: 151_646) < 151_646) }
        // Without the limit the sampler does pick them (the test's logits are not hollow).
        #expect(try greedy.sample(logits: logits) >= 151_646)
    }

    /// temperature 1e-38: l / t overflows to +∞ for every positive logit. The draw must then be
    /// the greedy token, never an arbitrary one from a NaN softmax.
    @Test func tinyTemperatureIsGreedyEquivalent() throws {
        // 30 / 1e-38 overflows float; 3.25 / 1e-38 does not, but the gaps are ~10^37.
        for logits: [Float] in [[15, 32.5, -20, 30, 5], [1.5, 3.25, -2, 3.0, 0.5]] {
            for seed in UInt64(0)..<20 {
                var sampler = try TokenSampler(SamplingParameters(temperature: 1e-38, seed: seed))
                #expect(try sampler.sample(logits: logits) == 1)
                let d = sampler.distribution(logits: logits)
                #expect(d.first?.id == 1 && d.first?.probability == 1)
                #expect(d.allSatisfy { !$0.probability.isNaN })
            }
        }
        // Negative logits only: l / t goes to −∞ for all but none overflow upwards; still greedy.
        var sampler = try TokenSampler(SamplingParameters(temperature: 1e-38, seed: 3))
        #expect(try sampler.sample(logits: [-3, -1, -2]) == 1)
        // A logit of +∞ takes all the mass.
        #expect(try sampler.sample(logits: [1, .infinity, 2]) == 1)
    }

    /// Logits with no number in them give a status, not token 0.
    @Test func logitsWithoutANumberAreAnError() throws {
        for logits: [Float] in [[.nan, .nan, .nan], [-.infinity, .nan], [-.infinity, -.infinity]] {
            for parameters in [SamplingParameters.greedy, SamplingParameters(temperature: 0.7, seed: 1)] {
                var sampler = try TokenSampler(parameters)
                do {
                    let id = try sampler.sample(logits: logits)
                    Issue.record("sampled \(id) from \(logits)")
                } catch {
                    #expect(error.status == .badWeights)
                }
            }
        }
        // Some NaNs among numbers are skipped, as before.
        var greedy = try TokenSampler(.greedy)
        #expect(try greedy.sample(logits: [.nan, 1, 2, .nan]) == 2)
    }
}
