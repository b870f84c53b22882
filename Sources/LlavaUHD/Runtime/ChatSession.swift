#if canImport(Glibc)
import Glibc
#endif

/// One conversation with a model: the KV cache, what each cached position holds, the chat
/// history and a cache of image embeddings. A session is used by one thread at a time; any
/// number of sessions may share one `LlavaModel`.
///
/// The prompt side (template, ids, image positions, position keys) is `PromptBuilder`; the
/// answer side (detokenizing, stop strings, the callback) is `AnswerStream`. Every call starts
/// with `beginCall()`, the one place the cancellation flag is reset and wired in.
///
/// Two levels of use:
/// * `chat(_:images:parameters:onText:)` takes a user turn and streams the answer. Each turn
///   builds the whole conversation's prompt as upstream does (template, `<image>` placeholders,
///   `tokenizer_image_token`), then evaluates only what the cache does not already hold: the
///   longest common prefix with the cached positions is kept, so a follow-up question does not
///   recompute earlier turns, and the result is the same as evaluating the whole prompt afresh.
/// * `eval(tokens:images:)`, `logits`, `sample(_:)` feed ids (−200 where an image goes) and
///   read the next-token distribution, like upstream's own generate loop.
public final class ChatSession: @unchecked Sendable {
    public struct Options: Sendable {
        /// Positions the KV cache holds; 0 means min(4096, max_position_embeddings).
        public var contextLength: Int = 0
        /// How the KV cache stores keys and values (16 bits by default; `.float32` is exact).
        public var kvCacheType: KVCacheType = .sessionDefault
        /// Encoded images this session keeps for its own reuse, whatever other sessions do with
        /// the model's shared cache (`LlavaModel.imageCache`), which the session also reads and
        /// fills. 0 turns image caching off for this session: it neither keeps images nor uses
        /// the shared cache, and encodes every image it is given.
        public var imageCacheCapacity: Int = 4
        /// The system prompt; nil means the template's default.
        public var systemPrompt: String? = nil
        /// How images are sliced (upstream eval defaults: pre-resize to 1024, at most 9 slices).
        public var slicing = SlicingOptions()
        /// Polled inside the vision tower, VDIM, projector, prefill and decode; returning true
        /// stops the work with `.cancelled`.
        public var shouldAbort: (@Sendable () -> Bool)? = nil
        /// Told on the calling thread as a call moves through its stages (each image encoding
        /// step, prefill, decoding), e.g. to show progress.
        public var onStage: (@Sendable (ChatStage) -> Void)? = nil

        public init() {}
    }

    public let model: LlavaModel
    public let options: Options
    /// Set from any thread to stop the current call with `.cancelled`; cleared when a call
    /// starts.
    public let cancellation = CancellationFlag()

    let cache: KVCache
    let prompts: PromptBuilder
    /// What each cached position holds, to find how much of a new prompt is already cached.
    private(set) var positions: [PromptBuilder.PositionKey] = []
    /// Ids evaluated so far (image positions left out), the history for repetition penalties.
    private(set) var tokenHistory: [Int] = []
    private(set) var messages: [ChatMessage] = []
    /// The encodings of the images the conversation holds, in prompt order.
    private(set) var conversationImages: [EncodedImage] = []
    private var imageCache: ImageEmbeddingCache
    /// Logits after the last evaluated position.
    public private(set) var logits: [Float]?
    /// The sampler of `sample(_:)`, kept while its parameters stay the same so the seeded
    /// random stream continues.
    private var sampler: TokenSampler?

    public init(model: LlavaModel, options: Options = Options()) throws(LlavaError) {
        let maxPositions = model.languageConfig.maxPositionEmbeddings
        guard options.contextLength >= 0, options.contextLength <= maxPositions else {
            throw LlavaError(.invalidArgument,
                             "context length \(options.contextLength) is outside 0...\(maxPositions) (max_position_embeddings)")
        }
        guard options.imageCacheCapacity >= 0 else {
            throw LlavaError(.invalidArgument, "image cache capacity \(options.imageCacheCapacity) is negative")
        }
        try options.slicing.validate()
        self.model = model
        self.options = options
        let capacity = options.contextLength == 0 ? min(4096, maxPositions) : options.contextLength
        cache = try KVCache(config: model.languageConfig, capacity: capacity, type: options.kvCacheType)
        prompts = PromptBuilder(model: model, template: model.chatTemplate.map { ChatTemplate(kind: $0, systemPrompt: options.systemPrompt) },
                                slicing: options.slicing)
        imageCache = ImageEmbeddingCache(capacity: options.imageCacheCapacity)
    }

    /// Positions the session's context holds.
    public var contextLength: Int { cache.capacity }
    /// Positions evaluated so far.
    public var position: Int { cache.count }
    /// The conversation so far (user and assistant turns).
    public var history: [ChatMessage] { messages }

    /// Forgets the conversation and the cached positions (the image-embedding cache is kept).
    public func reset() {
        cache.reset()
        positions = []
        tokenHistory = []
        messages = []
        conversationImages = []
        logits = nil
        sampler = nil
    }

    /// Where the stages of this session's calls time their parts (`ComputeContext.stageClock`),
    /// for benchmarks; nil (the default): not timed. Set between calls.
    package var stageClock: StageClock?

    /// Starts a call: lowers `cancellation` and returns the compute context every stage of
    /// the call polls (the flag, then the options' abort callback), with `stageClock`.
    func beginCall() -> ComputeContext {
        cancellation.reset()
        var context = model.computeContext(shouldAbort: options.shouldAbort).cancellable(by: cancellation)
        context.stageClock = stageClock
        return context
    }

    // MARK: - Images

    /// The encoding of `image` (number `index` of `count` in this call), from the session's
    /// cache or else the model's shared one when the same pixels were encoded before.
    func encode(_ image: RGBImage, index: Int, count: Int, context: ComputeContext,
                timings: inout ChatTimings) throws(LlavaError) -> EncodedImage {
        let key = ImageKey(image: image, options: options.slicing)
        let caching = options.imageCacheCapacity > 0
        if let hit = imageCache.lookup(key) ?? (caching ? model.imageCache.lookup(key) : nil) {
            timings.cachedImages += 1
            imageCache.insert(hit)
            return hit
        }
        let start = monotonicSeconds()
        let onStage = options.onStage
        let encoded = try model.encode(image, key: key, options: options.slicing, context: context) { stage in
            onStage?(.image(index: index, count: count, stage: stage))
        }
        timings.imageEncoding += monotonicSeconds() - start
        timings.encodedImages += 1
        imageCache.insert(encoded)
        if caching { model.imageCache.insert(encoded) }
        return encoded
    }

    // MARK: - Low level: ids in, logits out

    /// Appends `tokens` to the context: ids, with −200 where each of `images` goes (in order).
    /// Afterwards `logits` holds the next-token logits. Throws `.contextFull` (nothing
    /// evaluated) when the context cannot hold them, `.cancelled` (nothing evaluated) on abort.
    public func eval(tokens: [Int], images: [RGBImage] = []) throws(LlavaError) {
        guard !tokens.isEmpty else { throw LlavaError(.invalidArgument, "nothing to evaluate: no tokens") }
        let markers = tokens.reduce(0) { $0 + ($1 == MultimodalInput.imageMarker ? 1 : 0) }
        if model.vision == nil, markers > 0 || !images.isEmpty {
            throw LlavaError(.unsupported, "\(markers) image marker(s) (id −200) and \(images.count) image(s) given, but '\(model.path)' is a text-only LLM")
        }
        guard markers == images.count else {
            throw LlavaError(.invalidArgument,
                             "the tokens have \(markers) image marker(s) (id −200) but \(images.count) image(s) were given")
        }
        // The positions are known from the slicing plans: a request that cannot fit is refused
        // before any image is encoded, as `chat` does.
        let needed = try prompts.positionCount(ids: tokens, encoded: [], pending: images)
        guard needed <= cache.remaining else {
            throw LlavaError(.contextFull, "\(needed) positions do not fit: the context holds \(cache.capacity) and \(cache.count) are used")
        }
        let context = beginCall()
        var timings = ChatTimings()
        var encoded: [EncodedImage] = []
        for (i, image) in images.enumerated() {
            encoded.append(try encode(image, index: i, count: images.count, context: context, timings: &timings))
        }
        let prompt = try prompts.prompt(ids: tokens, images: encoded)
        let input = prompt.input
        guard input.count <= cache.remaining else {
            throw LlavaError(.contextFull, "\(input.count) positions do not fit: the context holds \(cache.capacity) and \(cache.count) are used")
        }
        let embeddings = try input.embeddings(decoder: model.language)
        // Rows another session already computed for the same positions are copied, not
        // recomputed (at least the last position is evaluated: its logits are the result).
        let before = cache.count
        let restored = model.prefixCache.restore(keys: positions + prompt.keys, limit: positions.count + input.count - 1,
                                                 into: cache)
        let h = model.languageConfig.hiddenSize
        options.onStage?(.prefill(positions: input.count - restored))
        do {
            logits = try embeddings.withUnsafeBufferPointer { (all) throws(LlavaError) -> [Float] in
                try model.language.eval(embeddings: UnsafeBufferPointer(rebasing: all[(restored * h)...]), cache: cache,
                                        context: context)
            }
        } catch {
            try? cache.truncate(to: before)  // nothing appended, the copied rows included
            throw error
        }
        positions += prompt.keys
        tokenHistory += tokens.filter { $0 >= 0 }
        conversationImages += encoded
        model.prefixCache.publish(keys: positions, cache: cache)
    }

    /// Samples the next token from `logits` (greedy when `parameters.temperature` is 0), with
    /// the evaluated ids as the repetition-penalty history. Ids past the tokenizer's vocabulary
    /// (which have no text) are never chosen. It does not evaluate the token:
    /// call `eval(tokens: [token])` to continue.
    public func sample(_ parameters: SamplingParameters) throws(LlavaError) -> Int {
        guard let logits else { throw LlavaError(.invalidArgument, "no logits yet: evaluate something first") }
        if sampler?.parameters != parameters { sampler = try TokenSampler(parameters) }
        return try sampler!.sample(logits: logits, history: tokenHistory, choosable: model.tokenizer.vocabularySize)
    }

    // MARK: - Chat

    /// One user turn: `text` (UTF-8; may contain `<image>` placeholders, one per image, else each
    /// image is put before the text as `<image>\n`, as upstream's eval scripts do) and its
    /// images. Streams the answer through `onText` (whole characters; return false to stop) and
    /// returns it. The answer joins the history, so the next call continues the conversation.
    ///
    /// Throws `.contextFull` when the prompt does not fit (the session is unchanged),
    /// `.cancelled` when the abort callback or `cancellation` stops it (a partial answer is kept
    /// in the history, so the session stays consistent and usable).
    @discardableResult
    public func chat(_ text: String, images: [RGBImage] = [], parameters: ChatParameters = ChatParameters(),
                     onText: (String) -> Bool = { _ in true }) throws(LlavaError) -> ChatReply {
        try parameters.generation.sampling.validate()
        if model.vision == nil, !images.isEmpty {
            throw LlavaError(.unsupported, "\(images.count) image(s) given, but '\(model.path)' is a text-only LLM")
        }
        let context = beginCall()
        var timings = ChatTimings()
        let turn = try prompts.userTurn(text, imageCount: images.count)
        // A cheap bound first: a text that cannot fit even at the most bytes a token can stand
        // for is refused before it is encoded (a 20 MB message would cost seconds and memory).
        if let perToken = model.tokenizer.inputBytesPerTokenBound {
            let bytes = text.utf8.count
            let (limit, overflow) = perToken.multipliedReportingOverflow(by: cache.capacity)
            if !overflow, bytes > limit {
                throw LlavaError(.contextFull, "a message of \(bytes) bytes needs at least \((bytes + perToken - 1) / perToken) positions "
                                 + "(a token stands for at most \(perToken) bytes); the context holds \(cache.capacity)")
            }
        }

        // The whole conversation's prompt, as upstream builds it. Its length is known from the
        // slicing plans, so a prompt that cannot fit is refused before any image is encoded.
        let ids = try prompts.ids(of: messages + [turn])
        let needed = try prompts.positionCount(ids: ids, encoded: conversationImages, pending: images)
        guard needed < cache.capacity else {
            throw LlavaError(.contextFull, "the conversation needs \(needed) positions plus the answer; "
                             + "the context holds \(cache.capacity)")
        }
        var newImages: [EncodedImage] = []
        for (i, image) in images.enumerated() {
            newImages.append(try encode(image, index: i, count: images.count, context: context, timings: &timings))
        }
        let allImages = conversationImages + newImages
        let prompt = try prompts.prompt(ids: ids, images: allImages)
        let input = prompt.input

        // Keep the cached prefix, evaluate the rest.
        let reused = PromptBuilder.reusablePrefix(cached: positions, keys: prompt.keys)
        let embeddings = try input.embeddings(decoder: model.language)
        try cache.truncate(to: reused)
        logits = nil
        // Then rows another session already computed for the same positions (at least the
        // prompt's last position is evaluated: its logits start the answer); copying them
        // counts as prefill time.
        let prefillStart = monotonicSeconds()
        let start = reused + model.prefixCache.restore(keys: prompt.keys, limit: input.count - 1, into: cache)
        positions = Array(prompt.keys.prefix(start))
        tokenHistory = positions.compactMap { if case .token(let id) = $0 { id } else { nil } }
        let h = model.languageConfig.hiddenSize
        options.onStage?(.prefill(positions: input.count - start))
        let promptLogits: [Float]
        do {
            promptLogits = try embeddings.withUnsafeBufferPointer { (all) throws(LlavaError) -> [Float] in
                try model.language.eval(embeddings: UnsafeBufferPointer(rebasing: all[(start * h)...]), cache: cache,
                                        context: context)
            }
        } catch {
            // A stopped prefill leaves the cache as the session's own prefix had it (the copied
            // rows go too), as without the prefix cache.
            try? cache.truncate(to: reused)
            positions = Array(prompt.keys.prefix(reused))
            tokenHistory = positions.compactMap { if case .token(let id) = $0 { id } else { nil } }
            throw error
        }
        timings.prefill = monotonicSeconds() - prefillStart
        model.prefixCache.publish(keys: prompt.keys, cache: cache)
        positions = prompt.keys
        tokenHistory = ids.filter { $0 >= 0 }
        messages.append(turn)
        conversationImages = allImages
        logits = promptLogits

        // Generate, streaming whole characters and holding back possible stop strings.
        var stream = AnswerStream(tokenizer: model.tokenizer, stopStrings: parameters.stopStrings)
        var generated: [Int] = []
        options.onStage?(.decoding)
        let decodeStart = monotonicSeconds()
        var result: GenerationResult
        do {
            result = try model.language.generate(
                after: promptLogits, cache: cache, parameters: parameters.generation, history: tokenHistory,
                choosable: model.tokenizer.vocabularySize, context: context
            ) { (token) throws(LlavaError) -> GenerationControl in
                generated.append(token)
                return try stream.append(token, onText: onText)
            }
        } catch {
            // Keep what was generated and evaluated, so the history matches the cache.
            syncAfterGeneration(generated: Array(generated.prefix(max(0, cache.count - positions.count))), answer: stream.text)
            logits = nil  // the last evaluated position's logits are not known here
            throw error
        }
        timings.decode = monotonicSeconds() - decodeStart
        stream.finish(onText: onText)
        let answer = stream.text
        let evaluated = result.pendingToken == nil ? result.tokens : Array(result.tokens.dropLast())
        syncAfterGeneration(generated: evaluated, answer: answer)
        if let pending = result.pendingToken { tokenHistory.append(pending) }
        logits = result.lastLogits

        let reason: ChatReply.StopReason
        switch result.stopReason {
        case .endOfSequence: reason = .endOfSequence
        case .maxNewTokens: reason = .maxNewTokens
        case .contextFull: reason = .contextFull
        case .callback: reason = stream.hitStopString ? .stopString : .callback
        }
        return ChatReply(text: answer, tokens: result.tokens, stopReason: reason, promptPositions: input.count,
                         reusedPositions: start, timings: timings)
    }

    /// Makes `turns` the conversation that the next `chat` call continues, as if those turns had
    /// been chatted: alternating user and assistant messages starting with a user one, `images`
    /// being the user turns' images in prompt order (`<image>` placeholders in a turn's text, or
    /// `imageCount` images before it). The images are encoded (or taken from the caches) now;
    /// nothing is evaluated: the next `chat` keeps the longest cached prefix that matches the
    /// whole prompt and evaluates the rest, so a client that resends the conversation so far
    /// with each question (as OpenAI-style clients do) recomputes only what changed.
    /// Returns the encoding timings. Throws `.invalidArgument` when the turns do not alternate or
    /// the images do not match the placeholders (the session is then unchanged), `.cancelled`.
    @discardableResult
    public func setConversation(_ turns: [ChatMessage], images: [RGBImage]) throws(LlavaError) -> ChatTimings {
        for (i, m) in turns.enumerated() where m.role != (i % 2 == 0 ? .user : .assistant) {
            throw LlavaError(.invalidArgument, "turn \(i) should be a \(i % 2 == 0 ? "user" : "assistant") message")
        }
        let placeholders = turns.reduce(0) { $0 + ($1.imageCount) }
        guard placeholders == images.count else {
            throw LlavaError(.invalidArgument, "the turns have \(placeholders) image place(s) but \(images.count) image(s) were given")
        }
        let context = beginCall()
        var timings = ChatTimings()
        var encoded: [EncodedImage] = []
        for (i, image) in images.enumerated() {
            encoded.append(try encode(image, index: i, count: images.count, context: context, timings: &timings))
        }
        messages = turns
        conversationImages = encoded
        logits = nil
        return timings
    }

    // MARK: - Saved state

    /// Everything besides the KV rows that the conversation needs to continue (what
    /// `SessionFile` writes).
    func savedState() -> SessionState {
        SessionState(systemPrompt: options.systemPrompt, slicing: options.slicing, positions: positions,
                     tokenHistory: tokenHistory, messages: messages, conversationImages: conversationImages,
                     logits: logits, sampler: sampler)
    }

    /// Takes over `state` (read by `SessionFile` for a cache that holds exactly
    /// `state.positions.count` positions): the conversation continues as it would have in the
    /// session that saved it. The images go into the session's image cache and, when it
    /// caches, the model's.
    func restore(_ state: SessionState) {
        positions = state.positions
        tokenHistory = state.tokenHistory
        messages = state.messages
        conversationImages = state.conversationImages
        logits = state.logits
        sampler = state.sampler
        for image in state.conversationImages {
            imageCache.insert(image)
            if options.imageCacheCapacity > 0 { model.imageCache.insert(image) }
        }
    }

    /// Records the evaluated answer tokens as cached positions and the answer as the
    /// assistant's turn.
    private func syncAfterGeneration(generated: [Int], answer: String) {
        positions += generated.map { .token($0) }
        tokenHistory += generated
        positions.removeLast(max(0, positions.count - cache.count))
        messages.append(.assistant(answer))
    }
}

/// How to answer one chat turn.
public struct ChatParameters: Sendable {
    /// Max new tokens (default 128, as upstream's eval), stop ids (default: the model's EOS) and
    /// sampling (default greedy).
    public var generation = GenerationParameters()
    /// Texts that end the answer when they appear; they are not part of the answer.
    public var stopStrings: [String] = []

    public init(generation: GenerationParameters = GenerationParameters(), stopStrings: [String] = []) {
        self.generation = generation
        self.stopStrings = stopStrings
    }
}

/// Where a `chat` or `eval(tokens:images:)` call is, for progress display.
public enum ChatStage: Sendable, Equatable {
    /// Image `index` of the `count` given to the call (0-based) enters an encoding stage;
    /// images found in the cache are not encoded and not reported.
    case image(index: Int, count: Int, stage: ImageEncodingStage)
    /// Evaluating the prompt positions the cache does not hold.
    case prefill(positions: Int)
    /// Generating the answer.
    case decoding
}

/// Where the time of one turn went, in seconds.
public struct ChatTimings: Sendable {
    /// Slicing, vision tower, VDIM and projector of the images not found in the cache.
    public var imageEncoding: Double = 0
    public var encodedImages = 0
    public var cachedImages = 0
    /// Evaluating the prompt positions that were not cached.
    public var prefill: Double = 0
    /// Generating the answer.
    public var decode: Double = 0
}

/// The answer to one chat turn.
public struct ChatReply: Sendable {
    public enum StopReason: Int32, Sendable {
        case endOfSequence = 0, maxNewTokens = 1, stopString = 2, callback = 3, contextFull = 4
    }

    public var text: String
    /// The generated ids (a stop id is not included).
    public var tokens: [Int]
    public var stopReason: StopReason
    /// Positions of the whole conversation's prompt, and how many of them came from the cache
    /// (the session's own, or rows other sessions computed, from the model's `PrefixCache`).
    public var promptPositions: Int
    public var reusedPositions: Int
    public var timings: ChatTimings
}
