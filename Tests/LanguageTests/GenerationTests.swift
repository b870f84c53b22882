import Foundation
import LlavaUHD
import Testing
import TestSupport

/// The generation loop's control paths on the transformers LLaMA fixture model: stopping from
/// the callback, at an EOS id, and cancellation (abort callback inside a token's layers, a
/// flag raised from another thread). After each, the cache holds exactly the positions it
/// reports, and continuing gives the tokens of an uninterrupted greedy run (the fixture's).
@Suite struct GenerationTests {
    static let dir = Fixtures.root + "/hf/llama"

    static func setUp() throws -> (TransformerDecoder, [Int], [Int]) {
        let decoder = try loadHuggingFaceDecoder(dir)
        let ids = try NPYArray(path: dir + "/input_ids.npy").ints
        let expected = try NPYArray(path: dir + "/generated_ids.npy").ints
        return (decoder, ids, expected)
    }

    /// A new 64-position cache holding the prompt `ids`, and the logits after it.
    static func prefill(_ decoder: TransformerDecoder, _ ids: [Int],
                        context: ComputeContext) throws -> (cache: KVCache, logits: [Float]) {
        let cache = try KVCache(config: decoder.config, capacity: 64)
        return (cache, try decoder.eval(tokens: ids, cache: cache, context: context))
    }

    /// After a run stopped with `expected[pending]` chosen but not evaluated: evaluating it and
    /// generating `count` more tokens greedily gives the uninterrupted run's next tokens.
    static func expectContinuation(_ decoder: TransformerDecoder, _ cache: KVCache, expected: [Int], pending: Int,
                                   count: Int, cancellation: CancellationFlag? = nil,
                                   context: ComputeContext) throws {
        let next = try decoder.eval(tokens: [expected[pending]], cache: cache, context: context)
        let rest = try decoder.generate(after: next, cache: cache, parameters: GenerationParameters(maxNewTokens: count),
                                        cancellation: cancellation, context: context)
        #expect(rest.tokens == Array(expected[(pending + 1)..<(pending + 1 + count)]))
    }

    /// Counts abort polls and asks to stop at poll number `at`.
    final class AbortAfter: @unchecked Sendable {
        var polls = 0
        let at: Int
        init(_ at: Int) { self.at = at }
        func poll() -> Bool { polls += 1; return polls >= at }
    }

    @Test func callbackStopAndContinue() throws {
        let (decoder, ids, expected) = try Self.setUp()
        let context = testContext()
        let (cache, logits) = try Self.prefill(decoder, ids, context: context)
        var seen: [Int] = []
        let first = try decoder.generate(after: logits, cache: cache, parameters: GenerationParameters(maxNewTokens: 20),
                                         context: context) { token in
            seen.append(token)
            return seen.count == 3 ? .stop : .continue
        }
        #expect(first.stopReason == .callback)
        #expect(first.tokens == Array(expected[..<3]) && seen == first.tokens)
        #expect(first.pendingToken == expected[2])
        #expect(cache.count == ids.count + 2)

        try Self.expectContinuation(decoder, cache, expected: expected, pending: 2, count: 5, context: context)
    }

    @Test func stopsAtStopIds() throws {
        let (decoder, ids, expected) = try Self.setUp()
        let context = testContext()
        let (cache, logits) = try Self.prefill(decoder, ids, context: context)
        var callbacks = 0
        let result = try decoder.generate(after: logits, cache: cache,
                                          parameters: GenerationParameters(maxNewTokens: 20, stopTokenIds: [expected[4]]),
                                          context: context) { _ in callbacks += 1; return .continue }
        #expect(result.stopReason == .endOfSequence)
        #expect(result.stopToken == expected[4])
        #expect(result.tokens == Array(expected[..<4]) && callbacks == 4)
        #expect(result.pendingToken == nil)
        #expect(cache.count == ids.count + 4)

        let none = try decoder.generate(after: logits, cache: KVCache(config: decoder.config, capacity: 64),
                                        parameters: GenerationParameters(maxNewTokens: 0), context: context)
        #expect(none.tokens.isEmpty && none.stopReason == .maxNewTokens && none.pendingToken == nil)
        #expect(throws: LlavaError.self) {
            try decoder.generate(after: [1, 2], cache: cache, context: context)
        }
    }

    @Test func abortInsideTheLayersLeavesTheCacheConsistent() throws {
        let (decoder, ids, expected) = try Self.setUp()
        let cache = try KVCache(config: decoder.config, capacity: 64)

        // Prefill cancelled at its second layer: nothing is kept.
        let early = AbortAfter(2)
        let error = #expect(throws: LlavaError.self) {
            try decoder.eval(tokens: ids, cache: cache, context: testContext(abort: early.poll))
        }
        #expect(error?.status == .cancelled)
        #expect(cache.count == 0)

        // Generation cancelled inside the 4th token's second layer (polls: one per layer per
        // token plus one per step): the cache keeps the prompt and the tokens evaluated before.
        let context = testContext()
        let logits = try decoder.eval(tokens: ids, cache: cache, context: context)
        let layers = decoder.config.layerCount
        let abort = AbortAfter(3 * (1 + layers) + 1 + 2)
        var seen: [Int] = []
        let cancelled = #expect(throws: LlavaError.self) {
            try decoder.generate(after: logits, cache: cache, parameters: GenerationParameters(maxNewTokens: 20),
                                 context: testContext(abort: abort.poll)) { seen.append($0); return .continue }
        }
        #expect(cancelled?.status == .cancelled)
        #expect(seen == Array(expected[..<4]))
        #expect(cache.count == ids.count + 3)

        // Continue from there: the same tokens as the uninterrupted run.
        try Self.expectContinuation(decoder, cache, expected: expected, pending: 3, count: 6, context: context)
    }

    @Test func flagRaisedFromAnotherThread() throws {
        let (decoder, ids, expected) = try Self.setUp()
        let context = testContext()
        let (cache, logits) = try Self.prefill(decoder, ids, context: context)
        let flag = CancellationFlag()
        var seen: [Int] = []
        let error = #expect(throws: LlavaError.self) {
            try decoder.generate(after: logits, cache: cache, parameters: GenerationParameters(maxNewTokens: 20),
                                 cancellation: flag, context: context) { token in
                seen.append(token)
                if seen.count == 2 {
                    // Another thread raises the flag; this one waits until it has.
                    let done = DispatchSemaphore(value: 0)
                    Thread { flag.cancel(); done.signal() }.start()
                    done.wait()
                }
                return .continue
            }
        }
        #expect(error?.status == .cancelled)
        #expect(flag.isCancelled)
        #expect(seen == Array(expected[..<2]))
        #expect(cache.count == ids.count + 1)

        // Lowered again, the flag lets the next call run; the cache continues where it stopped.
        flag.reset()
        try Self.expectContinuation(decoder, cache, expected: expected, pending: 1, count: 4, cancellation: flag,
                                    context: context)
    }

    @Test func samplingIsReproducibleWithASeed() throws {
        let (decoder, ids, _) = try Self.setUp()
        let context = testContext()
        func run(_ seed: UInt64) throws -> [Int] {
            let (cache, logits) = try Self.prefill(decoder, ids, context: context)
            let sampling = SamplingParameters(temperature: 1.2, topK: 40, topP: 0.95, seed: seed)
            return try decoder.generate(after: logits, cache: cache,
                                        parameters: GenerationParameters(maxNewTokens: 12, sampling: sampling),
                                        history: ids, context: context).tokens
        }
        let a = try run(5)
        #expect(a.count == 12)
        #expect(try run(5) == a)
        #expect(try run(6) != a)
    }
}
