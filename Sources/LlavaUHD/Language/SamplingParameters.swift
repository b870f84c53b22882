/// How the next token is chosen from the logits. The defaults are greedy decoding, as
/// upstream evaluates (temperature 0, `do_sample=False`).
///
/// The steps follow Hugging Face `generate` (transformers' logits processors, in its order):
/// 1. repetition penalty (`RepetitionPenaltyLogitsProcessor`, the same rule as llama.cpp's
///    `repeat_penalty`): for each distinct id among the last `penaltyWindow` tokens of the
///    history, a logit l becomes l / penalty if l > 0, else l · penalty;
/// 2. greedy when `temperature` is 0: the largest logit (the lowest id on ties);
/// 3. otherwise logits / temperature, then top-k, top-p, min-p (`TopKLogitsWarper`,
///    `TopPLogitsWarper`, `MinPLogitsWarper`; each keeps at least one token), softmax over
///    what is left, and one draw from `seed`'s random stream (see `TokenSampler`).
public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy; otherwise logits are divided by it before sampling.
    public var temperature: Float = 0
    /// Keep the k most likely tokens (and any tied with the k-th); 0 = off.
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least p; 1 = off.
    public var topP: Float = 1
    /// Drop tokens whose probability is below minP × the top probability; 0 = off.
    public var minP: Float = 0
    /// 1 = off; > 1 discourages repeating tokens of the history.
    public var repetitionPenalty: Float = 1
    /// How many of the most recent history tokens the penalty looks at; 0 = all of them
    /// (Hugging Face's behaviour; llama.cpp's default window is 64).
    public var penaltyWindow: Int = 0
    /// Seed of the random stream (used only when sampling).
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                repetitionPenalty: Float = 1, penaltyWindow: Int = 0, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.penaltyWindow = penaltyWindow
        self.seed = seed
    }

    /// Greedy decoding (upstream's evaluation setting).
    public static let greedy = SamplingParameters()

    /// True when the choice is the arg-max (temperature 0).
    public var isGreedy: Bool { temperature == 0 }

    /// Throws `.invalidArgument` naming the first value out of range.
    public func validate() throws(LlavaError) {
        func bad(_ what: String) -> LlavaError { LlavaError(.invalidArgument, "sampling: \(what)") }
        guard temperature >= 0, temperature.isFinite else { throw bad("temperature \(temperature) must be ≥ 0 and finite") }
        guard topK >= 0 else { throw bad("top_k \(topK) must be ≥ 0 (0 = off)") }
        guard topP > 0, topP <= 1 else { throw bad("top_p \(topP) must be in (0, 1] (1 = off)") }
        guard minP >= 0, minP <= 1 else { throw bad("min_p \(minP) must be in [0, 1] (0 = off)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw bad("repetition penalty \(repetitionPenalty) must be positive (1 = off)")
        }
        guard penaltyWindow >= 0 else { throw bad("penalty window \(penaltyWindow) must be ≥ 0 (0 = whole history)") }
    }
}
