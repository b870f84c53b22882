/// A SentencePiece BPE tokenizer (`tokenizer.model`: LLaMA-2 / Vicuna v1.5), encoding and
/// decoding exactly as the sentencepiece library does, plus the Hugging Face `LlamaTokenizer`
/// handling of special-token text (`parseSpecial`) and `add_bos_token`.
///
/// Encoding: normalize (SentencePieceNormalizer), split into characters and user-defined
/// symbols, merge the adjacent pair whose merged piece has the highest score (ties: the
/// leftmost) until no pair is a piece, split merged UNUSED pieces back, and write unknown
/// characters as byte pieces `<0xXX>` (byte fallback) or as one unknown id per run.
/// Decoding: "▁" becomes a space, the first piece of a text loses its leading "▁", runs of
/// byte pieces are reassembled into UTF-8 (each invalid byte becomes U+FFFD).
package final class SentencePieceTokenizer: Tokenizer {
    package let vocabularySize: Int
    package let bosTokenId: Int32?
    package let eosTokenId: Int32?
    package let unknownTokenId: Int32?
    package let padTokenId: Int32?
    package let addsBOSByDefault: Bool
    package var decodeRepair: UTF8Repair { .perByte }
    /// Hugging Face `LlamaTokenizer(legacy:)`: how text next to special tokens is encoded when
    /// `parseSpecial` is on (true, the default when tokenizer_config.json does not say, keeps
    /// a dummy-prefix "▁" on every text segment).
    package let legacy: Bool

    private let pieceTexts: [[UInt8]]
    private let scores: [Float]
    private let types: [SentencePieceModelProto.PieceType]
    /// NORMAL, USER_DEFINED and UNUSED pieces: the pieces merges may produce.
    private let mergeablePieces: ByteStringTable
    /// CONTROL, UNKNOWN and BYTE pieces.
    private let reservedPieces: ByteStringTable
    private let unkId: Int32
    /// The id of `<0xXX>` for each byte, when byte fallback is on.
    private let byteIds: [Int32]?
    private let userDefined: PrefixMatcher
    private let normalizer: SentencePieceNormalizer
    public let inputBytesPerTokenBound: Int?
    private let addDummyPrefix: Bool
    private let splitter: AddedTokenSplitter
    /// Ids named special by the configuration (bos, eos, unk, pad, additional, added special).
    private let configuredSpecialIds: Set<Int32>
    /// Hugging Face's `all_special_tokens`: bos, eos, unk, pad and the additional ones.
    private let namedSpecialIds: Set<Int32>
    /// Added tokens whose ids lie beyond the SentencePiece vocabulary.
    private let extraTokens: [Int32: [UInt8]]
    private let spaceSymbolId: Int32?
    /// What the unknown piece decodes to (trainer_spec `unk_surface`, default " ⁇ ").
    private let unknownSurface: [UInt8]

    /// Loads `tokenizer.model` alone (sentencepiece defaults: BOS added, `<s>` `</s>` `<unk>`).
    package convenience init(modelFile path: String) throws(LlavaError) {
        try self.init(modelFile: path, config: TokenizerConfig())
    }

    /// Loads `tokenizer.model` and, from the same directory, tokenizer_config.json and
    /// special_tokens_map.json where present.
    package convenience init(modelFile path: String, configDirectory: String) throws(LlavaError) {
        try self.init(modelFile: path, config: try TokenizerConfig.load(directory: configDirectory))
    }

    convenience init(modelFile path: String, config: TokenizerConfig) throws(LlavaError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch {
            throw LlavaError(.badTokenizer, "cannot read the SentencePiece model '\(path)': \(error.message)")
        }
        try self.init(proto: try SentencePieceModelProto.parse(file.bytes, path: path), config: config, context: "'\(path)'")
    }

    /// A tokenizer from a parsed model (a tokenizer.model file, or the pieces of a GGUF file's
    /// `llama` tokenizer metadata); `context` names the source in errors.
    init(proto: SentencePieceModelProto, config: TokenizerConfig, context: String) throws(LlavaError) {

        guard proto.trainer.modelType == .bpe else {
            throw LlavaError(.unsupported, "\(context): SentencePiece model type \(proto.trainer.modelType) is not supported (only BPE)")
        }
        if let d = proto.denormalizer, !d.precompiledCharsMap.isEmpty {
            throw LlavaError(.unsupported, "\(context): SentencePiece decoding rules (denormalizer_spec) are not supported")
        }
        guard !proto.pieces.isEmpty, proto.pieces.count < Int(Int32.max) else {
            throw LlavaError(.badTokenizer, "\(context): the model has \(proto.pieces.count) pieces")
        }

        var mergeable = ByteStringTable(expectedCount: proto.pieces.count)
        var reserved = ByteStringTable(expectedCount: 300)
        var userDefined = PrefixMatcher()
        var unkId: Int32?
        var byteIds = [Int32](repeating: -1, count: 256)
        for (i, p) in proto.pieces.enumerated() {
            let id = Int32(i)
            guard !p.text.isEmpty else { throw LlavaError(.badTokenizer, "\(context): piece \(i) is empty") }
            let isMergeable = p.type == .normal || p.type == .userDefined || p.type == .unused
            let inserted = isMergeable ? mergeable.insert(p.text, value: id) : reserved.insert(p.text, value: id)
            guard inserted else {
                throw LlavaError(.badTokenizer, "\(context): piece '\(String(decoding: p.text, as: UTF8.self))' is defined twice")
            }
            switch p.type {
            case .userDefined: userDefined.insert(p.text, value: id)
            case .unknown:
                guard unkId == nil else { throw LlavaError(.badTokenizer, "\(context): more than one unknown piece") }
                unkId = id
            case .byte:
                guard proto.trainer.byteFallback else {
                    throw LlavaError(.badTokenizer, "\(context): byte piece at id \(i) although byte_fallback is off")
                }
                guard let b = Self.byteValue(ofPiece: p.text) else {
                    throw LlavaError(.badTokenizer, "\(context): byte piece '\(String(decoding: p.text, as: UTF8.self))' is not <0xXX>")
                }
                byteIds[Int(b)] = id
            default: break
            }
        }
        guard let unkId else { throw LlavaError(.badTokenizer, "\(context): the model has no unknown piece") }
        if proto.trainer.byteFallback {
            guard !byteIds.contains(-1) else { throw LlavaError(.badTokenizer, "\(context): byte_fallback is on but not all 256 byte pieces exist") }
            self.byteIds = byteIds
        } else {
            self.byteIds = nil
        }

        pieceTexts = proto.pieces.map(\.text)
        scores = proto.pieces.map(\.score)
        types = proto.pieces.map(\.type)
        mergeablePieces = mergeable
        reservedPieces = reserved
        self.unkId = unkId
        self.userDefined = userDefined
        normalizer = try SentencePieceNormalizer(spec: proto.normalizer, treatWhitespaceAsSuffix: proto.trainer.treatWhitespaceAsSuffix,
                                                 userDefined: userDefined, context: context)
        addDummyPrefix = proto.normalizer.addDummyPrefix
        unknownSurface = proto.trainer.unkSurface
        spaceSymbolId = mergeable.value(for: SentencePieceNormalizer.spaceSymbol)

        // Special tokens: the configuration's names, else sentencepiece's (control pieces only).
        func lookup(_ text: [UInt8]) -> Int32? { reserved.value(for: text) ?? mergeable.value(for: text) }
        func controlId(_ text: [UInt8]) -> Int32? {
            guard let id = reserved.value(for: text), proto.pieces[Int(id)].type == .control else { return nil }
            return id
        }
        var addedById: [Int32: AddedToken] = [:]
        for t in config.addedTokens { addedById[t.id] = t }
        func resolve(_ entry: TokenizerConfig.Entry, default fallback: Int32?) -> Int32? {
            switch entry {
            case .absent: return fallback
            case .null: return nil
            case .token(let s): return lookup(Array(s.utf8)) ?? addedById.values.first(where: { $0.content == s })?.id
            }
        }
        bosTokenId = resolve(config.bosToken, default: controlId(proto.trainer.bosPiece))
        eosTokenId = resolve(config.eosToken, default: controlId(proto.trainer.eosPiece))
        unknownTokenId = resolve(config.unkToken, default: reserved.value(for: proto.trainer.unkPiece) == unkId ? unkId : nil)
        padTokenId = resolve(config.padToken, default: controlId(proto.trainer.padPiece))
        addsBOSByDefault = config.addBOSToken ?? true
        legacy = config.legacy ?? true

        // What Hugging Face splits the text on: the named special tokens and every added token.
        var splitTokens: [Int32: AddedToken] = addedById
        var special = Set<Int32>()
        for id in [bosTokenId, eosTokenId, unknownTokenId, padTokenId].compactMap({ $0 }) {
            special.insert(id)
            if splitTokens[id] == nil, Int(id) < proto.pieces.count {
                splitTokens[id] = AddedToken(id: id, content: String(decoding: proto.pieces[Int(id)].text, as: UTF8.self), special: true)
            }
        }
        for s in config.additionalSpecialTokens {
            guard let id = lookup(Array(s.utf8)) ?? addedById.values.first(where: { $0.content == s })?.id else { continue }
            special.insert(id)
            if splitTokens[id] == nil { splitTokens[id] = AddedToken(id: id, content: s, special: true) }
        }
        namedSpecialIds = special
        for t in config.addedTokens where t.special { special.insert(t.id) }
        configuredSpecialIds = special
        splitter = AddedTokenSplitter(splitTokens.values.sorted { $0.id < $1.id })

        var extra: [Int32: [UInt8]] = [:]
        for t in config.addedTokens where Int(t.id) >= proto.pieces.count { extra[t.id] = Array(t.content.utf8) }
        extraTokens = extra
        vocabularySize = max(proto.pieces.count, (extra.keys.max().map { Int($0) + 1 }) ?? 0)
        // With byte fallback every input byte ends in a piece (whose text is at least as long:
        // a space becomes the 3-byte "▁") or a byte token; without a character map and without
        // whitespace collapsing nothing is dropped. Otherwise there is no bound.
        if self.byteIds != nil, normalizer.charsMap == nil, !proto.normalizer.removeExtraWhitespaces {
            var longest = 1
            for piece in proto.pieces { longest = max(longest, piece.text.count) }
            for t in config.addedTokens { longest = max(longest, t.content.utf8.count) }
            inputBytesPerTokenBound = longest
        } else {
            inputBytesPerTokenBound = nil
        }
    }

    /// 0xXX for a piece "<0xXX>" (two upper-case hex digits, as sentencepiece writes them).
    private static func byteValue(ofPiece p: [UInt8]) -> UInt8? {
        guard p.count == 6, p[0] == UInt8(ascii: "<"), p[1] == UInt8(ascii: "0"), p[2] == UInt8(ascii: "x"),
              p[5] == UInt8(ascii: ">") else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        guard let hi = hex(p[3]), let lo = hex(p[4]) else { return nil }
        return hi << 4 | lo
    }

    // MARK: Encoding

    package func encode(utf8 text: [UInt8], addBOS: Bool, parseSpecial: Bool) throws(LlavaError) -> [Int32] {
        try UTF8Text.validate(text)
        var ids: [Int32] = []
        if addBOS, let bos = bosTokenId { ids.append(bos) }
        if !parseSpecial || splitter.isEmpty {
            try encodePlain(text, dummyPrefix: addDummyPrefix, into: &ids)
        } else if legacy {
            for segment in splitter.split(text) {
                switch segment {
                case .token(let id): ids.append(id)
                case .text(let r): try encodePlain(Array(text[r]), dummyPrefix: addDummyPrefix, into: &ids)
                }
            }
        } else if !text.isEmpty {
            ids.append(contentsOf: try encodeNonLegacy(text))
        }
        return ids
    }

    /// Hugging Face's `LlamaTokenizer(legacy=False)`: "▁" is put in front of the text (inner
    /// "▁" become spaces), SentencePiece runs without its dummy prefix, a segment that starts
    /// with a space is encoded after the unknown-token text (whose pieces are then dropped) so
    /// that its leading space survives, and a lone "▁" before a special token is dropped.
    private func encodeNonLegacy(_ text: [UInt8]) throws(LlavaError) -> [Int32] {
        var prefixed = SentencePieceNormalizer.spaceSymbol
        var i = 0
        while i < text.count {
            if i + 3 <= text.count && text[i] == 0xE2 && text[i + 1] == 0x96 && text[i + 2] == 0x81 {
                prefixed.append(0x20)
                i += 3
            } else {
                prefixed.append(text[i])
                i += 1
            }
        }
        let unkText = unknownTokenId.map { pieceTexts[Int($0)] } ?? Array("<unk>".utf8)
        var unkIds: [Int32] = []
        try encodePlain(unkText, dummyPrefix: false, into: &unkIds)
        let unkLength = unkIds.count
        var ids: [Int32] = []
        for segment in splitter.split(prefixed) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let r):
                let piece = Array(prefixed[r])
                let startsWithSpace = piece.first == 0x20 || piece.starts(with: SentencePieceNormalizer.spaceSymbol)
                if startsWithSpace {
                    var segmentIds: [Int32] = []
                    try encodePlain(unkText + piece, dummyPrefix: false, into: &segmentIds)
                    ids.append(contentsOf: segmentIds.count >= unkLength ? segmentIds[unkLength...] : segmentIds[...])
                } else {
                    try encodePlain(piece, dummyPrefix: false, into: &ids)
                }
            }
        }
        if ids.count > 1, let space = spaceSymbolId, ids[0] == space, namedSpecialIds.contains(ids[1]) {
            ids.removeFirst()
        }
        return ids
    }

    /// sentencepiece's `Encode` of valid UTF-8 text, appending ids. Throws `.invalidArgument`
    /// when the normalized text is over `TokenizerInputLimit` (a character map can make text
    /// much longer, whitespace escaping 3 times).
    func encodePlain(_ text: [UInt8], dummyPrefix: Bool, into ids: inout [Int32]) throws(LlavaError) {
        let normalized = normalizer.normalize(text, addDummyPrefix: dummyPrefix)
        try TokenizerInputLimit.check(normalizedBytes: normalized.count, textBytes: text.count)
        guard !normalized.isEmpty else { return }
        normalized.withUnsafeBufferPointer { encodeNormalized($0, into: &ids) }
    }

    /// A possible merge of two adjacent symbols; "smaller" means merged first: the higher
    /// score, then the leftmost.
    private struct Candidate: Comparable {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32

        static func < (a: Candidate, b: Candidate) -> Bool {
            a.score > b.score || (a.score == b.score && a.left < b.left)
        }
    }

    /// BPE over normalized text (sentencepiece `bpe::Model::SampleEncode` without dropout),
    /// then byte fallback / unknown merging (`PopulateSentencePieceText`).
    private func encodeNormalized(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        // Symbols: byte ranges of the text in a doubly linked list.
        var start: [Int32] = [], length: [Int32] = [], prev: [Int32] = [], next: [Int32] = [], frozen: [Bool] = []
        var i = 0
        while i < text.count {
            var n: Int
            var isUserDefined = false
            if let m = userDefined.longestMatch(text, at: i, end: text.count) {
                n = m.length
                isUserDefined = true
            } else {
                n = Self.oneCharLength(text[i])
            }
            n = min(n, text.count - i)
            let index = Int32(start.count)
            start.append(Int32(i)); length.append(Int32(n)); frozen.append(isUserDefined)
            prev.append(index - 1)
            i += n
            next.append(i < text.count ? index + 1 : -1)
        }

        var agenda = BinaryHeap<Candidate>(reservingCapacity: start.count)
        /// For merged UNUSED pieces: the two symbols they were made of (by piece id).
        var reverseMerges: [Int32: (Range<Int>, Range<Int>)] = [:]

        func addCandidate(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0, !frozen[Int(left)], !frozen[Int(right)] else { return }
            let s = Int(start[Int(left)])
            let size = Int(length[Int(left)] + length[Int(right)])
            guard let id = mergeablePieces.value(text.baseAddress.map { $0 + s }, count: size) else { return }
            agenda.push(Candidate(score: scores[Int(id)], left: left, right: right, size: Int32(size)))
            if types[Int(id)] == .unused {
                let l = Int(length[Int(left)])
                reverseMerges[id] = (s..<(s + l), (s + l)..<(s + size))
            }
        }

        for k in 1..<max(start.count, 1) { addCandidate(Int32(k - 1), Int32(k)) }

        while let top = agenda.pop() {
            let l = Int(top.left), r = Int(top.right)
            guard length[l] > 0, length[r] > 0, length[l] + length[r] == top.size else { continue }
            length[l] += length[r]
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = top.left }
            length[r] = 0
            addCandidate(prev[l], top.left)
            addCandidate(top.left, next[l])
        }

        // Final symbols → ids, splitting merged UNUSED pieces back into their parts.
        var previousWasUnknown = false
        func emit(_ r: Range<Int>) {
            let base = text.baseAddress.map { $0 + r.lowerBound }
            let id = reservedPieces.value(base, count: r.count) ?? mergeablePieces.value(base, count: r.count) ?? unkId
            if types[Int(id)] == .unused, let parts = reverseMerges[id] {
                emit(parts.0)
                emit(parts.1)
                return
            }
            let isUnknown = id == unkId
            if isUnknown, let byteIds {
                for b in text[r] { ids.append(byteIds[Int(b)]) }
            } else if !(isUnknown && previousWasUnknown) {
                ids.append(id)
            }
            previousWasUnknown = isUnknown
        }
        var index: Int32 = start.isEmpty ? -1 : 0
        while index >= 0 {
            let s = Int(start[Int(index)])
            emit(s..<(s + Int(length[Int(index)])))
            index = next[Int(index)]
        }
    }

    /// sentencepiece's `OneCharLen`: the sequence length its lead byte announces.
    @inline(__always)
    private static func oneCharLength(_ lead: UInt8) -> Int {
        switch lead >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    // MARK: Vocabulary

    package func isSpecialToken(_ id: Int32) -> Bool {
        if configuredSpecialIds.contains(id) { return true }
        guard id >= 0 && Int(id) < types.count else { return false }
        return types[Int(id)] == .control || types[Int(id)] == .unknown
    }

    package func token(forId id: Int32) -> String? {
        guard let text = rawToken(id) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    private func rawToken(_ id: Int32) -> [UInt8]? {
        guard id >= 0 else { return nil }
        if Int(id) < pieceTexts.count { return pieceTexts[Int(id)] }
        return extraTokens[id]
    }

    package func id(forToken token: String) -> Int32? {
        let bytes = Array(token.utf8)
        if let id = reservedPieces.value(for: bytes) ?? mergeablePieces.value(for: bytes) { return id }
        return extraTokens.first(where: { $0.value == bytes })?.key
    }

    package func piece(forId id: Int32, renderSpecial: Bool) -> [UInt8]? {
        guard let text = rawToken(id) else { return nil }
        if isSpecialToken(id) { return renderSpecial ? text : [] }
        if Int(id) >= types.count { return text }
        if types[Int(id)] == .byte, let b = Self.byteValue(ofPiece: text) { return [b] }
        return Self.replacingSpaceSymbols(text[...])
    }

    private static func replacingSpaceSymbols(_ p: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(p.count)
        var i = p.startIndex
        while i < p.endIndex {
            if i + 3 <= p.endIndex && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(p[i])
                i += 1
            }
        }
        return out
    }

    // MARK: Decoding

    /// With `skipSpecialTokens` (Hugging Face `decode(skip_special_tokens=True)`) special ids
    /// give no text; without it this is sentencepiece's own decoding, where control pieces are
    /// invisible and the unknown piece reads " ⁇ " (`unk_surface`).
    package func appendDecoded(_ id: Int32, to bytes: inout [UInt8], state: inout TokenDecodingState,
                              skipSpecialTokens: Bool) throws(LlavaError) {
        try checkId(id)
        guard let text = rawToken(id) else {
            throw LlavaError(.invalidArgument, "token id \(id) has no text in this vocabulary")
        }
        if skipSpecialTokens && isSpecialToken(id) { return }
        guard Int(id) < types.count else {
            // An added token beyond the SentencePiece vocabulary: its text.
            stepNonBytePiece(&state)
            state.consumedDummyPrefix = false
            bytes.append(contentsOf: text)
            if !text.isEmpty { state.textIsEmpty = false }
            return
        }
        var piece: ArraySlice<UInt8>
        switch types[Int(id)] {
        case .byte:
            if let b = Self.byteValue(ofPiece: text) {
                bytes.append(b)
                state.textIsEmpty = false
            }
            return
        case .control:
            piece = []
        case .unknown:
            piece = unknownSurface[...]
        case .normal, .userDefined, .unused:
            piece = text[...]
        }
        // sentencepiece's DecodeSentencePiece: the first piece of a text loses its "▁".
        stepNonBytePiece(&state)
        var consumed = false
        if types[Int(id)] != .control && types[Int(id)] != .unknown && state.atStart
            && (addDummyPrefix || normalizer.spec.removeExtraWhitespaces)
            && piece.starts(with: SentencePieceNormalizer.spaceSymbol) {
            piece = piece.dropFirst(3)
            consumed = !normalizer.spec.removeExtraWhitespaces
        }
        state.consumedDummyPrefix = consumed
        let decoded = types[Int(id)] == .unknown ? Array(piece) : Self.replacingSpaceSymbols(piece)
        bytes.append(contentsOf: decoded)
        if !decoded.isEmpty { state.textIsEmpty = false }
    }

    /// sentencepiece leaves the start of the text at the first non-byte piece after some text
    /// or after a piece whose "▁" was consumed.
    private func stepNonBytePiece(_ state: inout TokenDecodingState) {
        if state.consumedDummyPrefix || !state.textIsEmpty { state.atStart = false }
    }
}
