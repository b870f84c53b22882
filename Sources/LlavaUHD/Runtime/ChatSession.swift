#if canImport(Glibc)
import Glibc
#endif

/// One conversation with a model: the KV cache, what each cached position holds, the chat
/// history and a cache of image embeddings. A session is used by one thread at a time; any
/// number of sessions may share one `LlavaModel`.
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
        /// Encoded images kept for reuse (0 disables the cache).
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

    /// What one cached position holds, to find how much of a new prompt is already cached.
    enum PositionKey: Equatable {
        case token(Int)
        case image(ImageKey, element: MultimodalInput.Element)
    }

    public let model: LlavaModel
    public let options: Options
    /// Set from any thread to stop the current call with `.cancelled`; cleared when a call
    /// starts.
    public let cancellation = CancellationFlag()

    let cache: KVCache
    /// nil when the model has no template (a text-only LLM whose `chat_template` was not
    /// recognised): `chat` then refuses.
    let template: ChatTemplate?
    private(set) var positions: [PositionKey] = []
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
        cache = try KVCache(config: model.languageConfig, capacity: capacity)
        template = model.chatTemplate.map { ChatTemplate(kind: $0, systemPrompt: options.systemPrompt) }
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

    func computeContext() -> ComputeContext {
        let user = options.shouldAbort
        let flag = cancellation
        return model.computeContext(shouldAbort: { flag.isCancelled || (user?() ?? false) })
    }

    // MARK: - Images

    /// How images enter the LLM input (a text-only LLM has no images: any layout will do).
    private var imageTokenLayout: ImageTokenLayout { model.vision?.config.imageTokenLayout ?? .perSlice }

    /// The encoding of `image` (number `index` of `count` in this call), from the cache when the
    /// same pixels were encoded before.
    func encode(_ image: RGBImage, index: Int, count: Int, context: ComputeContext,
                timings: inout ChatTimings) throws(LlavaError) -> EncodedImage {
        let key = ImageKey(image: image, options: options.slicing)
        if let hit = imageCache.lookup(key) {
            timings.cachedImages += 1
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
        return encoded
    }

    // MARK: - Low level: ids in, logits out

    /// Appends `tokens` to the context: ids, with −200 where each of `images` goes (in order).
    /// Afterwards `logits` holds the next-token logits. Throws `.contextFull` (nothing
    /// evaluated) when the context cannot hold them, `.cancelled` (nothing evaluated) on abort.
    public func eval(tokens: [Int], images: [RGBImage] = []) throws(LlavaError) {
        guard !tokens.isEmpty else { throw LlavaError(.invalidArgument, "nothing to evaluate: no tokens") }
        cancellation.reset()
        let context = computeContext()
        var timings = ChatTimings()
        var encoded: [EncodedImage] = []
        for (i, image) in images.enumerated() {
            encoded.append(try encode(image, index: i, count: images.count, context: context, timings: &timings))
        }
        if model.vision == nil, tokens.contains(MultimodalInput.imageMarker) {
            throw LlavaError(.unsupported, "the tokens hold an image marker (\(MultimodalInput.imageMarker)), but '\(model.path)' is a text-only LLM")
        }
        let input = try MultimodalInput(promptIds: tokens, images: encoded.map(\.projected),
                                        layout: imageTokenLayout, hiddenSize: model.languageConfig.hiddenSize)
        guard input.count <= cache.remaining else {
            throw LlavaError(.contextFull, "\(input.count) positions do not fit: the context holds \(cache.capacity) and \(cache.count) are used")
        }
        let embeddings = try input.embeddings(decoder: model.language)
        options.onStage?(.prefill(positions: input.count))
        logits = try model.language.eval(embeddings: embeddings, cache: cache, context: context)
        positions += keys(of: input, images: encoded)
        tokenHistory += tokens.filter { $0 >= 0 }
        conversationImages += encoded
    }

    /// Samples the next token from `logits` (greedy when `parameters.temperature` is 0), with
    /// the evaluated ids as the repetition-penalty history. It does not evaluate the token:
    /// call `eval(tokens: [token])` to continue.
    public func sample(_ parameters: SamplingParameters) throws(LlavaError) -> Int {
        guard let logits else { throw LlavaError(.invalidArgument, "no logits yet: evaluate something first") }
        if sampler?.parameters != parameters { sampler = try TokenSampler(parameters) }
        return try sampler!.sample(logits: logits, history: tokenHistory)
    }

    private func keys(of input: MultimodalInput, images: [EncodedImage]) -> [PositionKey] {
        input.elements.map { element in
            switch element {
            case .text(let id): return .token(id)
            case .image(let i, _): return .image(images[i].key, element: element)
            }
        }
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
        cancellation.reset()
        let context = computeContext()
        var timings = ChatTimings()
        guard let template else {
            throw LlavaError(.unsupported, "'\(model.path)' has no chat template this library recognises; name one when loading "
                             + "(LoadOptions.chatTemplate, the CLI's --template) or evaluate raw tokens")
        }
        if model.vision == nil, !images.isEmpty {
            throw LlavaError(.unsupported, "\(images.count) image(s) given, but '\(model.path)' is a text-only LLM")
        }
        // Without a vision tower "<image>" is plain text.
        let placeholders = model.vision == nil ? 0 : UTF8Text.count(ChatTemplate.imagePlaceholder, in: text)
        guard placeholders == 0 || placeholders == images.count else {
            throw LlavaError(.invalidArgument,
                             "the text has \(placeholders) <image> placeholder(s) but \(images.count) image(s) were given")
        }
        let turn = ChatMessage.user(text, images: placeholders == 0 ? images.count : 0)

        // The whole conversation's prompt, as upstream builds it. Its length is known from the
        // slicing plans, so a prompt that cannot fit is refused before any image is encoded.
        let layout = imageTokenLayout
        let ids = try template.encode(messages + [turn], with: model.tokenizer, imagePlaceholders: model.vision != nil).map(Int.init)
        var needed = ids.filter { $0 != MultimodalInput.imageMarker }.count
            + conversationImages.reduce(0) { $0 + $1.positionCount(layout: layout) }
        for image in images { needed += try model.plan(for: image, options: options.slicing).imagePositions(layout: layout) }
        guard needed < cache.capacity else {
            throw LlavaError(.contextFull, "the conversation needs \(needed) positions plus the answer; "
                             + "the context holds \(cache.capacity)")
        }
        var newImages: [EncodedImage] = []
        for (i, image) in images.enumerated() {
            newImages.append(try encode(image, index: i, count: images.count, context: context, timings: &timings))
        }
        let allImages = conversationImages + newImages
        let input = try MultimodalInput(promptIds: ids, images: allImages.map(\.projected), layout: layout,
                                        hiddenSize: model.languageConfig.hiddenSize)
        let newKeys = keys(of: input, images: allImages)

        // Keep the cached prefix, evaluate the rest.
        var reused = 0
        while reused < min(positions.count, newKeys.count - 1), positions[reused] == newKeys[reused] { reused += 1 }
        let embeddings = try input.embeddings(decoder: model.language)
        try cache.truncate(to: reused)
        positions.removeLast(positions.count - reused)
        tokenHistory = positions.compactMap { if case .token(let id) = $0 { id } else { nil } }
        logits = nil
        let h = model.languageConfig.hiddenSize
        options.onStage?(.prefill(positions: input.count - reused))
        let prefillStart = monotonicSeconds()
        let promptLogits = try embeddings.withUnsafeBufferPointer { (all) throws(LlavaError) -> [Float] in
            try model.language.eval(embeddings: UnsafeBufferPointer(rebasing: all[(reused * h)...]), cache: cache,
                                    context: context)
        }
        timings.prefill = monotonicSeconds() - prefillStart
        positions = newKeys
        tokenHistory = ids.filter { $0 >= 0 }
        messages.append(turn)
        conversationImages = allImages
        logits = promptLogits

        // Generate, streaming whole characters and holding back possible stop strings.
        var detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
        var matcher = StopStringMatcher(parameters.stopStrings)
        var answer = ""
        var generated: [Int] = []
        var stoppedByCaller = false
        func emit(_ piece: String) {
            guard !stoppedByCaller else { return }
            let released = matcher.feed(piece)
            guard !released.isEmpty else { return }
            answer += released
            if !onText(released) { stoppedByCaller = true }
        }
        options.onStage?(.decoding)
        let decodeStart = monotonicSeconds()
        var result: GenerationResult
        do {
            result = try model.language.generate(
                after: promptLogits, cache: cache, parameters: parameters.generation, history: tokenHistory,
                cancellation: cancellation, context: context
            ) { (token) throws(LlavaError) -> GenerationControl in
                generated.append(token)
                emit(try detokenizer.append(Int32(token)))
                return matcher.stopped || stoppedByCaller ? .stop : .continue
            }
        } catch {
            // Keep what was generated and evaluated, so the history matches the cache.
            syncAfterGeneration(generated: Array(generated.prefix(max(0, cache.count - positions.count))), answer: answer)
            throw error
        }
        timings.decode = monotonicSeconds() - decodeStart
        if !matcher.stopped && !stoppedByCaller { emit(detokenizer.finish()) }
        // Text held back for a possible stop string ends the answer, unless the caller already
        // stopped it: the answer is then exactly what the caller was given.
        let tail = matcher.finish()
        if !tail.isEmpty && !stoppedByCaller {
            answer += tail
            _ = onText(tail)
        }
        let evaluated = result.pendingToken == nil ? result.tokens : Array(result.tokens.dropLast())
        syncAfterGeneration(generated: evaluated, answer: answer)
        if let pending = result.pendingToken { tokenHistory.append(pending) }
        logits = nil

        let reason: ChatReply.StopReason
        switch result.stopReason {
        case .endOfSequence: reason = .endOfSequence
        case .maxNewTokens: reason = .maxNewTokens
        case .contextFull: reason = .contextFull
        case .callback: reason = matcher.stopped ? .stopString : .callback
        }
        return ChatReply(text: answer, tokens: result.tokens, stopReason: reason, promptPositions: input.count,
                         reusedPositions: reused, timings: timings)
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
    /// Positions of the whole conversation's prompt, and how many of them came from the cache.
    public var promptPositions: Int
    public var reusedPositions: Int
    public var timings: ChatTimings
}

/// Monotonic wall-clock seconds.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
