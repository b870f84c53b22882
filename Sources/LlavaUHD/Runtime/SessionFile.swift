import CLlavaUHD
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A saved `ChatSession` (`luhd_session_save` / `luhd_session_load`): the KV rows in use, the
/// conversation state (`SessionState`) and a header that ties the file to its model. Loading
/// reads the rows back instead of recomputing them, so a conversation about a seven-view
/// image (about 1100 positions) is restored in the time it takes to read its file: in one pass,
/// the header and state section into memory, the KV rows straight into the new session's cache.
///
/// Layout (little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `LUHDSESS` |
/// | 8 | 4 | format version (1) |
/// | 12 | 4 | header size (96) |
/// | 16 | 32 | model digest (`LlavaModel.digest`) |
/// | 48 | 4 | KV storage (`KVCacheType` raw value) |
/// | 52 | 4 | decoder layers |
/// | 56 | 8 | row width (key/value heads × head width) |
/// | 64 | 8 | positions P (KV rows per layer, = positions of the state) |
/// | 72 | 8 | state section bytes S |
/// | 80 | 4 | CRC-32C of the state section |
/// | 84 | 4 | CRC-32C of the KV section |
/// | 88 | 4 | zero |
/// | 92 | 4 | CRC-32C of bytes 0..<92 |
/// | 96 | S | state section (`encode(_:model:)`) |
/// | 96+S | K | KV section: per layer, P key rows then P value rows of the row width, in the stored type |
///
/// The file is exactly 96 + S + K bytes. The checksums are CRC-32C (`luhd_crc32c`, hardware,
/// gigabytes per second): they detect damage; they do not authenticate, so every value read is
/// also checked against the file's own sizes and the model before it is used or allocated.
/// A file is written to a temporary name next to its destination, synced, then renamed over it,
/// so a reader never sees half a file.
enum SessionFile {
    static let magic: [UInt8] = Array("LUHDSESS".utf8)
    static let formatVersion: UInt32 = 1
    static let headerSize = 96
    /// Offsets of the header's checksum fields (what `seal` rewrites).
    static let stateChecksumOffset = 80, kvChecksumOffset = 84, headerChecksumOffset = 92

    /// What the header says.
    struct Header {
        var digest: [UInt8]
        var kvType: KVCacheType
        var layerCount: Int
        var rowWidth: Int
        var positionCount: Int
        var stateBytes: Int
        var stateChecksum: UInt32
        var kvChecksum: UInt32

        func encoded() -> [UInt8] {
            var w = BinaryWriter()
            w.raw(SessionFile.magic)
            w.u32(SessionFile.formatVersion)
            w.u32(UInt32(SessionFile.headerSize))
            w.raw(digest)
            w.u32(UInt32(bitPattern: kvType.rawValue))
            w.u32(UInt32(truncatingIfNeeded: layerCount))
            w.u64(UInt64(rowWidth))
            w.u64(UInt64(positionCount))
            w.u64(UInt64(stateBytes))
            w.u32(stateChecksum)
            w.u32(kvChecksum)
            w.u32(0)
            w.u32(crc(w.bytes))
            return w.bytes
        }
    }

    // MARK: - Writing

    /// Writes `session` to `path` (replacing it atomically). Throws `.io` when the file cannot
    /// be written, `.internal` when the session's state contradicts itself.
    static func save(_ session: ChatSession, to path: String) throws(LlavaError) {
        let model = session.model, cache = session.cache
        let state = try encode(session.savedState(), model: model)
        let count = cache.count, rowBytes = cache.rowWidth * cache.type.bytesPerValue
        var kvChecksum: UInt32 = 0
        forEachBlock(of: cache, count: count) { kvChecksum = luhd_crc32c(kvChecksum, $0.baseAddress, $0.count) }
        let header = Header(digest: model.digest, kvType: cache.type, layerCount: cache.layerCount, rowWidth: cache.rowWidth,
                            positionCount: count, stateBytes: state.count, stateChecksum: crc(state), kvChecksum: kvChecksum)
        let (out, temporary) = try createTemporary(next: path)
        do throws(LlavaError) {
            try out.write(header.encoded())
            try out.write(state)
            var failure: LlavaError?
            forEachBlock(of: cache, count: count) { block in
                guard failure == nil else { return }
                do throws(LlavaError) { try out.write(block) } catch { failure = error }
            }
            if let failure { throw failure }
            try out.sync()
            try out.close()
            guard rename(temporary, path) == 0 else {
                throw LlavaError(.io, "cannot rename '\(temporary)' to '\(path)': \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
        Log.debug("saved session to \(path): \(count) positions, \(state.count) state bytes, \(2 * cache.layerCount * count * rowBytes) KV bytes")
    }

    /// Distinguishes the temporary files of saves running at once in one process.
    static let temporaryCounter = Atomic<Int>(0)

    /// A new temporary file in `path`'s directory, `<path>.tmp-<pid>-<counter>`, created only
    /// where nothing is (a name left by a crashed process of the same pid, or a link someone
    /// planted, is skipped rather than truncated or followed); `.io` after 64 names taken.
    private static func createTemporary(next path: String) throws(LlavaError) -> (OutputFile, String) {
        for _ in 0..<64 {
            let temporary = path + ".tmp-\(getpid())-\(temporaryCounter.add(1, ordering: .relaxed).newValue)"
            if let file = try OutputFile.createNew(path: temporary) { return (file, temporary) }
        }
        throw LlavaError(.io, "cannot create a temporary file next to '\(path)': 64 names in a row are taken")
    }

    /// Calls `body` with each layer's key rows, then its value rows, of the first `count` positions.
    private static func forEachBlock(of cache: KVCache, count: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        let bytes = count * cache.rowWidth * cache.type.bytesPerValue
        for layer in 0..<cache.layerCount {
            body(UnsafeRawBufferPointer(start: cache.keys(layer: layer).base, count: bytes))
            body(UnsafeRawBufferPointer(start: cache.values(layer: layer).base, count: bytes))
        }
    }

    /// The state section of `state`. Throws `.internal` when a position names an image the
    /// conversation does not hold.
    static func encode(_ state: SessionState, model: LlavaModel) throws(LlavaError) -> [UInt8] {
        var w = BinaryWriter()
        w.u8(state.systemPrompt == nil ? 0 : 1)
        w.string(state.systemPrompt ?? "")
        writeSlicing(state.slicing, to: &w)
        // Each distinct image once; the conversation's order and the positions refer to them.
        var unique: [EncodedImage] = []
        var index: [ImageKey: Int] = [:]
        for image in state.conversationImages where index[image.key] == nil {
            index[image.key] = unique.count
            unique.append(image)
        }
        w.u64(UInt64(unique.count))
        for image in unique {
            w.raw(image.key.digest)
            writeSlicing(image.key.options, to: &w)
            w.i64(image.plan.inputSize.width)
            w.i64(image.plan.inputSize.height)
            for view in image.projected.views { w.floats(view) }
        }
        w.u64(UInt64(state.conversationImages.count))
        for image in state.conversationImages { w.u64(UInt64(index[image.key] ?? 0)) }
        w.u64(UInt64(state.messages.count))
        for m in state.messages {
            w.u8(m.role == .user ? 0 : 1)
            w.string(m.text)
            w.i64(m.imageCount)
            w.u8(m.imagesInText ? 1 : 0)
        }
        w.u64(UInt64(state.positions.count))
        for key in state.positions {
            switch key {
            case .token(let id):
                w.u8(0)
                w.i64(id)
            case .image(let imageKey, let element):
                guard let i = index[imageKey], case .image(let image, let slot) = element else {
                    throw LlavaError(.internal, "a cached position names an image the conversation does not hold")
                }
                switch slot {
                case .token(let view, let token):
                    w.u8(1)
                    w.u64(UInt64(i))
                    w.i64(image)
                    w.i64(view)
                    w.i64(token)
                case .separator(let id):
                    w.u8(2)
                    w.u64(UInt64(i))
                    w.i64(image)
                    w.i64(id)
                }
            }
        }
        w.u64(UInt64(state.tokenHistory.count))
        for id in state.tokenHistory { w.i64(id) }
        w.u8(state.logits == nil ? 0 : 1)
        if let logits = state.logits { w.floats(logits) }
        w.u8(state.sampler == nil ? 0 : 1)
        if let sampler = state.sampler {
            let p = sampler.parameters
            w.f32(p.temperature)
            w.i64(p.topK)
            w.f32(p.topP)
            w.f32(p.minP)
            w.f32(p.repetitionPenalty)
            w.i64(p.penaltyWindow)
            w.u64(p.seed)
            for word in sampler.randomStream.state { w.u64(word) }
        }
        return w.bytes
    }

    private static func writeSlicing(_ s: SlicingOptions, to w: inout BinaryWriter) {
        for v in [s.preresizeLongSide, s.maxSlices, s.scaleResolution, s.patchSize] { w.i64(v) }
    }

    // MARK: - Reading

    /// A new session of `model` holding the conversation saved at `path`, with `options`'
    /// context length, KV storage, image cache and callbacks; the system prompt and slicing are
    /// the saved conversation's (the options' are not used). Rows stored in another type than
    /// `options.kvCacheType` are converted (widening exactly, narrowing rounded to nearest even
    /// as the cache rounds what it stores).
    ///
    /// The file is read once, front to back: the header (checked, and its sizes against the
    /// file's, before anything is sized from it), the state section (checksum, model, every
    /// value), then the KV rows straight into the session's cache, whose checksum and the file's
    /// end are checked before the rows are committed and the session returned.
    ///
    /// Throws `.io` (unreadable), `.badSessionFile` (not a session file, damaged, truncated,
    /// inconsistent, another format version), `.sessionMismatch` (another model's),
    /// `.contextFull` (more positions than the options' context; found before the KV rows are
    /// read), `.invalidArgument` (options out of range), `.outOfMemory`.
    static func load(model: LlavaModel, path: String, options: ChatSession.Options) throws(LlavaError) -> ChatSession {
        let input = try SessionFileInput(path: path)
        let headerBytes = try input.read(min(headerSize, input.size))
        defer { headerBytes.deallocate() }
        let header = try readHeader(UnsafeRawBufferPointer(headerBytes), fileSize: input.size, source: path)
        let stateBytes = try input.read(header.stateBytes)
        defer { stateBytes.deallocate() }
        let state = try readState(UnsafeRawBufferPointer(stateBytes), header: header, model: model, source: path)
        var restored = options
        restored.systemPrompt = state.systemPrompt
        restored.slicing = state.slicing
        let session = try ChatSession(model: model, options: restored)
        let cache = session.cache
        guard header.positionCount <= cache.capacity else {
            throw LlavaError(.contextFull, "\(path): the saved conversation holds \(header.positionCount) positions; "
                             + "the session's context holds \(cache.capacity)")
        }
        try readRows(from: input, header: header, into: cache)
        session.restore(state)
        model.prefixCache.publish(keys: state.positions, cache: cache)
        return session
    }

    /// Checks and parses a whole session file image (what `load` reads from a file, for the
    /// fuzz target): its header, its state section (for `model`) and its KV section's checksum,
    /// in the order `load` checks them. Returns the header, the state and the KV section.
    static func read(_ bytes: UnsafeRawBufferPointer, model: LlavaModel,
                     source: String) throws(LlavaError) -> (Header, SessionState, UnsafeRawBufferPointer) {
        let header = try readHeader(UnsafeRawBufferPointer(rebasing: bytes[0..<min(headerSize, bytes.count)]), fileSize: bytes.count,
                                    source: source)
        let state = UnsafeRawBufferPointer(rebasing: bytes[headerSize..<(headerSize + header.stateBytes)])
        let parsed = try readState(state, header: header, model: model, source: source)
        let kv = UnsafeRawBufferPointer(rebasing: bytes[(headerSize + header.stateBytes)...])
        guard crc(kv) == header.kvChecksum else {
            throw LlavaError(.badSessionFile, "\(source): the KV section's checksum does not match: the file is damaged")
        }
        return (header, parsed, kv)
    }

    /// Checks and parses the header (`bytes`: the file's first `headerSize` bytes, or all of a
    /// shorter file) of a file of `fileSize` bytes: its magic, version, checksum and sizes, which
    /// must add up to exactly `fileSize`. Nothing is sized from the header before this passes.
    static func readHeader(_ bytes: UnsafeRawBufferPointer, fileSize: Int, source: String) throws(LlavaError) -> Header {
        var r = BinaryReader(bytes, status: .badSessionFile, source: source)
        guard fileSize >= headerSize, bytes.count >= headerSize else {
            throw r.failure("\(fileSize) bytes are too few for a session file (its header alone is \(headerSize))")
        }
        guard try Array(r.bytes(8, "magic")) == magic else { throw r.failure("not a llava-uhd session file (no LUHDSESS magic)") }
        let version = try r.u32("format version")
        guard version == formatVersion else {
            throw r.failure("format version \(version); this library reads version \(formatVersion)")
        }
        let declaredHeader = try r.u32("header size")
        guard declaredHeader == headerSize else { throw r.failure("header size \(declaredHeader); version 1 has \(headerSize)") }
        let stored = UnsafeRawBufferPointer(rebasing: bytes[headerChecksumOffset..<headerSize]).loadUnaligned(as: UInt32.self)
        guard UInt32(littleEndian: stored) == crc(UnsafeRawBufferPointer(rebasing: bytes[0..<headerChecksumOffset])) else {
            throw r.failure("the header's checksum does not match: the file is damaged")
        }
        let digest = Array(try r.bytes(32, "model digest"))
        let rawType = try r.u32("KV type")
        guard let kvType = KVCacheType(rawValue: Int32(truncatingIfNeeded: rawType)), UInt64(rawType) == UInt64(kvType.rawValue) else {
            throw r.failure("KV type \(rawType) is not a luhd_kv_type")
        }
        let layers = Int(try r.u32("layer count"))
        let rowWidth = try r.count(0...Int(Int32.max), "row width")
        let positions = try r.count(0...Int(Int32.max), "position count")
        let stateBytes = try r.count(0...fileSize, "state section size")
        let stateChecksum = try r.u32("state checksum"), kvChecksum = try r.u32("KV checksum")
        var kvBytes = 2 * kvType.bytesPerValue, overflow = false
        for factor in [layers, positions, rowWidth] {
            let (product, o) = kvBytes.multipliedReportingOverflow(by: factor)
            kvBytes = product
            overflow = overflow || o
        }
        let (partial, o1) = headerSize.addingReportingOverflow(stateBytes)
        let (expected, o2) = partial.addingReportingOverflow(kvBytes)
        guard !overflow, !o1, !o2, expected == fileSize else {
            let what = !overflow && !o1 && !o2 && expected > fileSize ? "truncated" : "the wrong size"
            throw r.failure("the file is \(what): \(fileSize) bytes, but its header describes \(headerSize) + \(stateBytes) "
                            + "state + \(kvBytes) KV bytes (\(layers) layers × \(positions) positions × \(rowWidth) values, \(kvType))")
        }
        return Header(digest: digest, kvType: kvType, layerCount: layers, rowWidth: rowWidth, positionCount: positions,
                      stateBytes: stateBytes, stateChecksum: stateChecksum, kvChecksum: kvChecksum)
    }

    /// Checks a state section against its header's checksum and `model` (digest, layers, row
    /// width; `.sessionMismatch` for another model's file) and parses it.
    static func readState(_ bytes: UnsafeRawBufferPointer, header: Header, model: LlavaModel,
                          source: String) throws(LlavaError) -> SessionState {
        let failure = { (message: String) in LlavaError(.badSessionFile, "\(source): \(message)") }
        guard crc(bytes) == header.stateChecksum else { throw failure("the state section's checksum does not match: the file is damaged") }
        guard header.digest == model.digest else {
            throw LlavaError(.sessionMismatch, "\(source): the session was saved with another model (its model digest differs from "
                             + "'\(model.path)')")
        }
        let lm = model.languageConfig
        guard header.layerCount == lm.layerCount, header.rowWidth == lm.kvHeadCount * lm.headDim,
              header.positionCount <= lm.maxPositionEmbeddings else {
            throw failure("the file has \(header.layerCount) layers × \(header.rowWidth) values per row and \(header.positionCount) "
                          + "positions; the model has \(lm.layerCount) × \(lm.kvHeadCount * lm.headDim) and at most "
                          + "\(lm.maxPositionEmbeddings) positions")
        }
        return try decode(bytes, model: model, positionCount: header.positionCount, source: source)
    }

    /// Parses a state section for `model`; it must describe exactly `positionCount` positions.
    static func decode(_ bytes: UnsafeRawBufferPointer, model: LlavaModel, positionCount: Int,
                       source: String) throws(LlavaError) -> SessionState {
        var r = BinaryReader(bytes, status: .badSessionFile, source: source + ", state section")
        let lm = model.languageConfig, vocab = lm.vocabSize
        let hasSystem = try r.u8("system prompt flag")
        guard hasSystem <= 1 else { throw r.failure("system prompt flag \(hasSystem) is not 0 or 1") }
        let system = try r.string(limit: bytes.count, "system prompt")
        let slicing = try readSlicing(&r, "the session's slicing")

        // Images: each as large as its slicing plan says, checked against the bytes left.
        let imageCount = try r.count(0...(r.remaining / 96), "image count")
        var images: [EncodedImage] = []
        for i in 0..<imageCount {
            let digest = Array(try r.bytes(32, "image \(i) digest"))
            let options = try readSlicing(&r, "image \(i) slicing")
            let width = try r.count(1...(1 << 20), "image \(i) width"), height = try r.count(1...(1 << 20), "image \(i) height")
            let plan: SlicePlan
            do {
                plan = try SlicePlan(inputSize: PixelSize(width: width, height: height), options: options)
            } catch {
                throw r.failure("image \(i): \(error.message)")
            }
            let viewCount = (plan.grid?.count ?? 0) + 1
            var views: [[Float]] = []
            for v in 0..<viewCount {
                views.append(try r.floats(ImageTokenLayout.tokensPerView * lm.hiddenSize, "image \(i) view \(v)"))
            }
            let projected = ProjectedImage(grid: plan.grid, views: views, separators: plan.separators.map(ImageTokenLayout.tokenID(of:)))
            images.append(EncodedImage(key: ImageKey(digest: digest, options: options), plan: plan, projected: projected))
        }
        let orderCount = try r.count(0...(r.remaining / 8), "conversation image count")
        var conversation: [EncodedImage] = []
        for i in 0..<orderCount {
            guard !images.isEmpty else { throw r.failure("conversation image \(i) refers to an image, but the file holds none") }
            conversation.append(images[try r.count(0...(images.count - 1), "conversation image \(i)")])
        }

        let messageCount = try r.count(0...(r.remaining / 18), "message count")
        var messages: [ChatMessage] = []
        for i in 0..<messageCount {
            let role = try r.u8("message \(i) role")
            guard role == (i % 2 == 0 ? 0 : 1) else {
                throw r.failure("message \(i) has role \(role); messages alternate user (0) and assistant (1), user first")
            }
            let text = try r.string(limit: bytes.count, "message \(i) text")
            let count = try r.count(0...orderCount, "message \(i) image count")
            let inText = try r.u8("message \(i) placement")
            guard inText <= 1 else { throw r.failure("message \(i) placement \(inText) is not 0 or 1") }
            messages.append(ChatMessage(role: role == 0 ? .user : .assistant, text: text, imageCount: count, imagesInText: inText == 1))
        }

        let declared = try r.count(0...lm.maxPositionEmbeddings, "position count")
        guard declared == positionCount else {
            throw r.failure("\(declared) positions, but the header and the KV section have \(positionCount)")
        }
        var positions: [PromptBuilder.PositionKey] = []
        for p in 0..<positionCount {
            let tag = try r.u8("position \(p) kind")
            switch tag {
            case 0:
                positions.append(.token(try r.count(0...(vocab - 1), "position \(p) token")))
            case 1, 2:
                guard !images.isEmpty else { throw r.failure("position \(p) is an image position, but the file holds no image") }
                let image = images[try r.count(0...(images.count - 1), "position \(p) image")]
                let element = try r.count(0...Int(Int32.max), "position \(p) image number")
                let slot: ImageTokenLayout.Slot
                if tag == 1 {
                    let view = try r.count(0...(image.projected.views.count - 1), "position \(p) view")
                    slot = .token(view: view, index: try r.count(0...(ImageTokenLayout.tokensPerView - 1), "position \(p) token index"))
                } else {
                    slot = .separator(try r.count(0...(vocab - 1), "position \(p) separator"))
                }
                positions.append(.image(image.key, element: .image(image: element, slot: slot)))
            default:
                throw r.failure("position \(p) kind \(tag) is not 0 (token), 1 (image token) or 2 (separator)")
            }
        }
        let historyCount = try r.count(0...(r.remaining / 8), "token history length")
        var history: [Int] = []
        for i in 0..<historyCount { history.append(try r.count(0...(vocab - 1), "token history \(i)")) }

        let hasLogits = try r.u8("logits flag")
        guard hasLogits <= 1 else { throw r.failure("logits flag \(hasLogits) is not 0 or 1") }
        let logits = hasLogits == 1 ? try r.floats(vocab, "logits") : nil
        let hasSampler = try r.u8("sampler flag")
        guard hasSampler <= 1 else { throw r.failure("sampler flag \(hasSampler) is not 0 or 1") }
        var sampler: TokenSampler?
        if hasSampler == 1 {
            let t = try r.f32("temperature"), k = try r.count(0...Int(Int32.max), "top_k"), topP = try r.f32("top_p")
            let minP = try r.f32("min_p"), penalty = try r.f32("repetition penalty")
            let window = try r.count(0...Int(Int32.max), "penalty window"), seed = try r.u64("seed")
            var words: [UInt64] = []
            for i in 0..<4 { words.append(try r.u64("random state word \(i)")) }
            guard let random = Xoshiro256StarStar(state: words) else { throw r.failure("the random state is all zero") }
            let parameters = SamplingParameters(temperature: t, topK: k, topP: topP, minP: minP, repetitionPenalty: penalty,
                                                penaltyWindow: window, seed: seed)
            do {
                sampler = try TokenSampler(parameters, random: random)
            } catch {
                throw r.failure(error.message)
            }
        }
        guard r.remaining == 0 else { throw r.failure("\(r.remaining) bytes follow the last field") }
        return SessionState(systemPrompt: hasSystem == 1 ? system : nil, slicing: slicing, positions: positions,
                            tokenHistory: history, messages: messages, conversationImages: conversation, logits: logits,
                            sampler: sampler)
    }

    private static func readSlicing(_ r: inout BinaryReader, _ what: String) throws(LlavaError) -> SlicingOptions {
        let limit = 1 << 20
        let s = SlicingOptions(preresizeLongSide: try r.count(0...limit, "\(what): pre-resize long side"),
                               maxSlices: try r.count(0...limit, "\(what): max slices"),
                               scaleResolution: try r.count(0...limit, "\(what): scale resolution"),
                               patchSize: try r.count(0...limit, "\(what): patch size"))
        do {
            try s.validate()
        } catch {
            throw r.failure("\(what): \(error.message)")
        }
        return s
    }

    /// Reads the KV section (the rest of `input`: per layer, the key rows then the value rows of
    /// `header.positionCount` positions) into the empty `cache`: straight into its buffers with
    /// read(2) when it stores the file's type, else through a bounded staging buffer, converting
    /// (widening exactly, narrowing rounded to nearest even as the cache rounds what it stores).
    /// The checksum is computed as the rows arrive and checked, with the file's end, before the
    /// rows are committed: a damaged file throws `.badSessionFile`, and the caller drops the
    /// session, so no half-restored session is ever seen.
    static func readRows(from input: SessionFileInput, header: Header, into cache: KVCache) throws(LlavaError) {
        let count = header.positionCount, width = header.rowWidth, type = header.kvType
        let rowBytes = width * type.bytesPerValue
        let chunkRows = max(1, min(count, SessionFileInput.chunkBytes / max(1, rowBytes)))
        let converting = type != cache.type && count > 0
        let raw = converting ? UnsafeMutableRawPointer.allocate(byteCount: chunkRows * rowBytes, alignment: 64) : nil
        let staging = converting ? UnsafeMutablePointer<Float>.allocate(capacity: chunkRows * width) : nil
        defer {
            raw?.deallocate()
            staging?.deallocate()
        }
        var checksum: UInt32 = 0
        for layer in 0..<(count > 0 ? cache.layerCount : 0) {
            for target in [cache.keys(layer: layer), cache.values(layer: layer)] {
                var r0 = 0
                while r0 < count {
                    let n = min(chunkRows, count - r0)
                    let destination = UnsafeMutableRawBufferPointer(start: raw ?? target.base + r0 * rowBytes, count: n * rowBytes)
                    try input.read(into: destination)
                    checksum = luhd_crc32c(checksum, destination.baseAddress, destination.count)
                    if let raw, let staging {
                        KVMatrix(base: raw, type: type, stride: width).widen(rows: n, column: 0, width: width, into: staging)
                        target.store(staging, rows: n, at: r0)
                    }
                    r0 += n
                }
            }
        }
        try input.expectEnd()
        guard checksum == header.kvChecksum else {
            throw LlavaError(.badSessionFile, "\(input.path): the KV section's checksum does not match: the file is damaged")
        }
        cache.commit(count: count)
    }

    // MARK: - Checksums

    static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt32 { luhd_crc32c(0, bytes.baseAddress, bytes.count) }
    static func crc(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { crc($0) } }

    /// Rewrites the three checksums of a file image so they match its contents (the sizes in
    /// the header are taken as they are): how tests and the fuzz target make files whose
    /// damage the checksums do not catch, to reach the checks behind them. Files too short for
    /// a header, or whose state size points past the end, are left as they are.
    static func seal(_ bytes: inout [UInt8]) {
        guard bytes.count >= headerSize else { return }
        bytes.withUnsafeMutableBytes { b in
            let stateBytes = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 72, as: UInt64.self))
            guard stateBytes <= UInt64(b.count - headerSize) else { return }
            let end = headerSize + Int(stateBytes)
            b.storeBytes(of: crc(UnsafeRawBufferPointer(rebasing: b[headerSize..<end])).littleEndian,
                         toByteOffset: stateChecksumOffset, as: UInt32.self)
            b.storeBytes(of: crc(UnsafeRawBufferPointer(rebasing: b[end...])).littleEndian, toByteOffset: kvChecksumOffset, as: UInt32.self)
            b.storeBytes(of: crc(UnsafeRawBufferPointer(rebasing: b[0..<headerChecksumOffset])).littleEndian,
                         toByteOffset: headerChecksumOffset, as: UInt32.self)
        }
    }
}

extension ImageKey {
    /// The key a saved session recorded: the content digest and the slicing options.
    init(digest: [UInt8], options: SlicingOptions) {
        self.digest = digest
        self.options = options
    }
}

extension ChatSession {
    /// Writes the conversation to `path`, replacing it atomically (see `SessionFile` and
    /// `luhd_session_save`). Throws `.io`.
    public func save(to path: String) throws(LlavaError) {
        try SessionFile.save(self, to: path)
    }

    /// A new session continuing the conversation saved at `path` with `model` (see
    /// `SessionFile.load` and `luhd_session_load`): `options` give the context, KV storage,
    /// image cache and callbacks; the system prompt and slicing are the saved conversation's.
    public static func load(model: LlavaModel, path: String, options: Options = Options()) throws(LlavaError) -> ChatSession {
        try SessionFile.load(model: model, path: path, options: options)
    }
}
