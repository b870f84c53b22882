/// What a generation loop does: how many tokens at most, which ids end it, how tokens are chosen.
public struct GenerationParameters: Sendable, Equatable {
    /// Upper bound on new tokens (upstream evaluates with 128).
    public var maxNewTokens: Int
    /// Ids that end generation; nil means the model's `eosTokenIds`.
    public var stopTokenIds: [Int]?
    public var sampling: SamplingParameters

    public init(maxNewTokens: Int = 128, stopTokenIds: [Int]? = nil, sampling: SamplingParameters = .greedy) {
        self.maxNewTokens = maxNewTokens
        self.stopTokenIds = stopTokenIds
        self.sampling = sampling
    }
}

/// The answer of a per-token callback.
public enum GenerationControl: Sendable, Equatable {
    case `continue`
    case stop
}

/// The outcome of `TransformerDecoder.generate`.
public struct GenerationResult: Sendable, Equatable {
    public enum StopReason: Sendable, Equatable {
        /// A stop id was chosen (`stopToken`); it is not in `tokens`.
        case endOfSequence
        /// `maxNewTokens` tokens were generated.
        case maxNewTokens
        /// The callback returned `.stop` after the last token of `tokens`.
        case callback
        /// The KV cache had no room for the next position.
        case contextFull
    }

    /// The new tokens, in order (without the stop id).
    public var tokens: [Int]
    public var stopReason: StopReason
    /// The stop id that ended generation (`.endOfSequence`), else nil.
    public var stopToken: Int?
    /// The last of `tokens` when it has not been evaluated into the cache (generation ended
    /// right after choosing it); evaluate it first to continue the sequence. Nil when every
    /// token of `tokens` is in the cache.
    public var pendingToken: Int?
    /// The logits after the last position the call evaluated (the prompt's when it evaluated
    /// none): what a caller inspects or samples from next.
    public var lastLogits: [Float] = []
}

extension TransformerDecoder {
    /// Generates tokens after the positions in `cache`, starting from `logits`, the logits of
    /// the last evaluated position (as `eval` returns them).
    ///
    /// Each step chooses a token (`parameters.sampling`, with `history` + the tokens so far as
    /// the repetition penalty's history). A stop id ends the loop at once (it is neither passed
    /// to `onToken` nor evaluated). Any other token is passed to `onToken`; unless it returns
    /// `.stop` or the token budget is used up, the token is evaluated (one position) and the
    /// loop continues from its logits. So after the call the cache holds the prompt and every
    /// returned token except `pendingToken`.
    ///
    /// Cancellation: raising `cancellation` (from any thread) or the context's abort callback
    /// stops the loop with `.cancelled`, between tokens or inside a token's layers; the cache
    /// then holds the prompt and the tokens already evaluated, and the decoder is ready for the
    /// next call. Errors thrown by `onToken` propagate the same way. Throws `.invalidArgument`
    /// for bad parameters or logits of the wrong size. `choosable` limits the ids that can be
    /// chosen to those below it (the tokenizer's vocabulary size; see `TokenSampler.sample`).
    public func generate(after logits: [Float], cache: KVCache, parameters: GenerationParameters = .init(),
                         history: [Int] = [], choosable: Int? = nil, cancellation: CancellationFlag? = nil,
                         context: ComputeContext,
                         onToken: (Int) throws(LlavaError) -> GenerationControl = { _ in .continue })
        throws(LlavaError) -> GenerationResult {
        guard parameters.maxNewTokens >= 0 else {
            throw LlavaError(.invalidArgument, "max new tokens \(parameters.maxNewTokens) must be ≥ 0")
        }
        guard logits.count == config.vocabSize else {
            throw LlavaError(.invalidArgument, "generation needs the \(config.vocabSize) logits of the last position, got \(logits.count)")
        }
        var sampler = try TokenSampler(parameters.sampling)
        let stopIds = Set(parameters.stopTokenIds ?? config.eosTokenIds)
        let context = context.cancellable(by: cancellation)
        var tokens: [Int] = []
        var seen = history
        var current = logits
        while tokens.count < parameters.maxNewTokens {
            try context.checkAbort("generation")
            let token = try sampler.sample(logits: current, history: seen, choosable: choosable)
            if stopIds.contains(token) {
                return GenerationResult(tokens: tokens, stopReason: .endOfSequence, stopToken: token, pendingToken: nil, lastLogits: current)
            }
            tokens.append(token)
            seen.append(token)
            if try onToken(token) == .stop {
                return GenerationResult(tokens: tokens, stopReason: .callback, stopToken: nil, pendingToken: token, lastLogits: current)
            }
            if tokens.count == parameters.maxNewTokens { break }
            if cache.remaining == 0 {
                return GenerationResult(tokens: tokens, stopReason: .contextFull, stopToken: nil, pendingToken: token, lastLogits: current)
            }
            current = try eval(tokens: [token], cache: cache, logits: .last, context: context)
        }
        return GenerationResult(tokens: tokens, stopReason: .maxNewTokens, stopToken: nil, pendingToken: tokens.last, lastLogits: current)
    }
}
