/// A byte-level BPE tokenizer (Qwen2's, GPT-2's, SmolLM's, LLaMA-3's), encoding as Hugging Face
/// `tokenizers` does:
///
/// 1. added tokens (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`) are cut out of the raw
///    text first (when `parseSpecial`);
/// 2. each remaining segment is NFC-normalized (Qwen2) and split by its `ByteLevelPreTokenizer`;
/// 3. each piece is encoded byte by byte and merged: the adjacent pair with the lowest merge
///    rank first, ties to the leftmost (a heap per piece, O(n log n)).
///
/// Decoding concatenates the raw bytes of the tokens (added tokens: their text) and repairs
/// invalid UTF-8 by maximal subparts, as `String::from_utf8_lossy` does.
package final class ByteLevelBPETokenizer: Tokenizer {
    package let vocabularySize: Int
    package let bosTokenId: Int32?
    package let eosTokenId: Int32?
    package let unknownTokenId: Int32?
    package let padTokenId: Int32?
    package let addsBOSByDefault: Bool
    package var decodeRepair: UTF8Repair { .maximalSubpart }

    private let vocabulary: ByteStringTable
    /// Vocabulary spelling of each id (index into `vocabulary`'s keys), -1 for none.
    private let spellingIndex: [Int32]
    /// The bytes each id decodes to (`ByteLevel` decoder rule), nil for unused ids.
    private let pieces: [[UInt8]?]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    private let merges: [UInt64: UInt64]
    /// The id of each single byte, -1 for a byte the vocabulary has no token for.
    private let byteIds: [Int32]
    private let ignoreMerges: Bool
    private let normalizesNFC: Bool
    public let inputBytesPerTokenBound: Int?
    private let preTokenizer: ByteLevelPreTokenizer
    private let splitter: AddedTokenSplitter
    private let addedTokens: [Int32: AddedToken]
    private let specialIds: Set<Int32>

    /// Loads a model directory's tokenizer.json, with tokenizer_config.json and
    /// special_tokens_map.json for BOS/EOS where present.
    package convenience init(tokenizerJSON path: String, configDirectory: String? = nil) throws(LlavaError) {
        let config = try configDirectory.map { dir throws(LlavaError) in try TokenizerConfig.load(directory: dir) } ?? TokenizerConfig()
        try self.init(files: try ByteLevelBPEFiles.load(tokenizerJSON: path), config: config)
    }

    /// Loads vocab.json + merges.txt; the added tokens and BOS/EOS come from
    /// tokenizer_config.json (and special_tokens_map.json) in `configDirectory`.
    package convenience init(vocabJSON: String, merges: String, configDirectory: String?) throws(LlavaError) {
        let config = try configDirectory.map { dir throws(LlavaError) in try TokenizerConfig.load(directory: dir) } ?? TokenizerConfig()
        try self.init(files: try ByteLevelBPEFiles.load(vocabJSON: vocabJSON, merges: merges, addedTokens: config.addedTokens),
                      config: config)
    }

    init(files: ByteLevelBPEFiles, config: TokenizerConfig) throws(LlavaError) {
        let vocab = files.vocabulary
        var maxId: Int32 = -1
        for k in 0..<vocab.count { maxId = max(maxId, vocab.value(at: k)) }
        for t in files.addedTokens { maxId = max(maxId, t.id) }
        guard maxId >= 0 else { throw LlavaError(.badTokenizer, "the byte-level BPE vocabulary is empty") }
        let size = Int(maxId) + 1
        guard size <= 1 << 24 else { throw LlavaError(.badTokenizer, "the byte-level BPE vocabulary claims \(size) ids") }

        var spellingIndex = [Int32](repeating: -1, count: size)
        var pieces = [[UInt8]?](repeating: nil, count: size)
        for k in 0..<vocab.count {
            let id = vocab.value(at: k)
            guard spellingIndex[Int(id)] < 0 else { continue }
            let spelling = Array(vocab.key(at: k))
            spellingIndex[Int(id)] = Int32(k)
            pieces[Int(id)] = ByteLevelAlphabet.decode(spelling) ?? spelling
        }
        var added: [Int32: AddedToken] = [:]
        var special = Set<Int32>()
        for t in files.addedTokens {
            added[t.id] = t
            let bytes = Array(t.content.utf8)
            pieces[Int(t.id)] = ByteLevelAlphabet.decode(bytes) ?? bytes
            if t.special { special.insert(t.id) }
        }

        // Some vocabularies (StarCoder's, SmolLM's) lack tokens for bytes rare or impossible in
        // text (control characters, 0xC0, 0xC1, 0xF1...0xFF): such a byte gets -1 and is left out of the ids, as the
        // Hugging Face BPE model drops a character it has no token for (and no unknown token).
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = vocab.value(for: ByteLevelAlphabet.encode([UInt8(b)])) { byteIds[b] = id }
        }
        // Printable ASCII, tab, line feed and carriage return are in every real vocabulary.
        if let b = (Array(0x20...0x7E) + [0x09, 0x0A, 0x0D]).first(where: { byteIds[$0] < 0 }) {
            throw LlavaError(.badTokenizer, "the byte-level vocabulary has no token for byte 0x\(String(b, radix: 16))")
        }

        var mergeTable: [UInt64: UInt64] = [:]
        mergeTable.reserveCapacity(files.merges.count)
        for (rank, m) in files.merges.enumerated() {
            // A repeated pair keeps its last rank, as Hugging Face's map does.
            mergeTable[UInt64(UInt32(m.left)) << 32 | UInt64(UInt32(m.right))] = UInt64(rank) << 32 | UInt64(UInt32(m.merged))
        }

        self.vocabulary = vocab
        self.spellingIndex = spellingIndex
        self.pieces = pieces
        self.merges = mergeTable
        self.byteIds = byteIds
        self.ignoreMerges = files.ignoreMerges
        self.normalizesNFC = files.normalizesNFC
        // A token stands for at most its spelling's bytes (a byte-level spelling is at least as
        // long as the raw bytes) or an added token's text; NFC composes at most 4 code points
        // of at most 4 bytes into one character, so the input may be up to 16 times longer.
        // A vocabulary without a token for some byte drops that byte, so there is no bound.
        var longest = 1
        for k in 0..<vocab.count { longest = max(longest, vocab.key(at: k).count) }
        for t in files.addedTokens { longest = max(longest, t.content.utf8.count) }
        self.inputBytesPerTokenBound = byteIds.contains(-1) ? nil : longest * (files.normalizesNFC ? 16 : 1)
        self.preTokenizer = files.preTokenizer
        self.splitter = AddedTokenSplitter(files.addedTokens)
        self.addedTokens = added
        self.specialIds = special
        self.vocabularySize = size

        func resolve(_ entry: TokenizerConfig.Entry, default fallback: Int32?) -> Int32? {
            switch entry {
            case .absent: return fallback
            case .null: return nil
            case .token(let s):
                return files.addedTokens.first(where: { $0.content == s })?.id ?? vocab.value(for: Array(s.utf8))
            }
        }
        let endOfText = files.addedTokens.first(where: { $0.content == "<|endoftext|>" })?.id
        bosTokenId = resolve(config.bosToken, default: nil)
        eosTokenId = resolve(config.eosToken, default: endOfText)
        unknownTokenId = resolve(config.unkToken, default: nil)
        padTokenId = resolve(config.padToken, default: nil)
        addsBOSByDefault = (config.addBOSToken ?? false) && bosTokenId != nil
    }

    // MARK: Encoding

    package func encode(utf8 text: [UInt8], addBOS: Bool, parseSpecial: Bool) throws(LlavaError) -> [Int32] {
        try UTF8Text.validate(text)
        // NFC makes UTF-8 text at most 3 times longer (UAX #15, "Stable Code Points").
        try TokenizerInputLimit.check(normalizedBytes: normalizesNFC ? 3 * text.count : text.count, textBytes: text.count)
        var ids: [Int32] = []
        ids.reserveCapacity(text.count / 3 + 4)
        if addBOS, let bos = bosTokenId { ids.append(bos) }
        if parseSpecial {
            for segment in splitter.split(text) {
                switch segment {
                case .token(let id): ids.append(id)
                case .text(let r): encodeSegment(text[r], into: &ids)
                }
            }
        } else {
            encodeSegment(text[...], into: &ids)
        }
        return ids
    }

    private func encodeSegment(_ text: ArraySlice<UInt8>, into ids: inout [Int32]) {
        let normalized = normalizesNFC ? UnicodeNFC.normalize(text) : Array(text)
        var scratch = MergeScratch()
        for r in preTokenizer.split(normalized[...]) {
            normalized.withUnsafeBufferPointer { b in
                encodeWord(UnsafeBufferPointer(rebasing: b[r]), scratch: &scratch, into: &ids)
            }
        }
    }

    /// A possible merge at a symbol position; "smaller" means merged first: the lower rank,
    /// then the leftmost.
    private struct Candidate: Comparable {
        var rank: UInt32
        var position: Int32
        var merged: Int32

        static func < (a: Candidate, b: Candidate) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && a.position < b.position)
        }
    }

    /// Reused buffers for merging one word.
    private struct MergeScratch {
        var symbols: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var alive: [Bool] = []
        var agenda = BinaryHeap<Candidate>()
    }

    @inline(__always)
    private func merge(_ a: Int32, _ b: Int32) -> (rank: UInt32, merged: Int32)? {
        guard let m = merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))] else { return nil }
        return (UInt32(m >> 32), Int32(truncatingIfNeeded: m & 0xFFFF_FFFF))
    }

    /// BPE of one pre-token (Hugging Face `Word::merge_all` without dropout). A byte the
    /// vocabulary has no token for is dropped before merging, as Hugging Face's BPE drops a
    /// character it cannot map when there is no unk token: its neighbours merge across it.
    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, scratch s: inout MergeScratch, into ids: inout [Int32]) {
        guard !word.isEmpty else { return }
        if word.count == 1 {
            if byteIds[Int(word[0])] >= 0 { ids.append(byteIds[Int(word[0])]) }
            return
        }
        if ignoreMerges, let id = vocabulary.value(for: ByteLevelAlphabet.encode(word)) {
            ids.append(id)
            return
        }
        s.symbols.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        s.alive.removeAll(keepingCapacity: true)
        s.agenda.removeAll()
        for byte in word where byteIds[Int(byte)] >= 0 { s.symbols.append(byteIds[Int(byte)]) }
        let n = s.symbols.count
        guard n > 1 else {
            ids.append(contentsOf: s.symbols)
            return
        }
        for i in 0..<n {
            s.prev.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
            s.alive.append(true)
        }
        for i in 0..<(n - 1) {
            if let m = merge(s.symbols[i], s.symbols[i + 1]) {
                s.agenda.push(Candidate(rank: m.rank, position: Int32(i), merged: m.merged))
            }
        }
        while let top = s.agenda.pop() {
            let p = Int(top.position)
            guard s.alive[p], s.next[p] >= 0 else { continue }
            let q = Int(s.next[p])
            guard let m = merge(s.symbols[p], s.symbols[q]), m.merged == top.merged else { continue }
            s.symbols[p] = top.merged
            s.alive[q] = false
            s.next[p] = s.next[q]
            if s.next[q] >= 0 { s.prev[Int(s.next[q])] = Int32(p) }
            if s.prev[p] >= 0, let m = merge(s.symbols[Int(s.prev[p])], s.symbols[p]) {
                s.agenda.push(Candidate(rank: m.rank, position: s.prev[p], merged: m.merged))
            }
            if s.next[p] >= 0, let m = merge(s.symbols[p], s.symbols[Int(s.next[p])]) {
                s.agenda.push(Candidate(rank: m.rank, position: Int32(p), merged: m.merged))
            }
        }
        var i: Int32 = 0
        while i >= 0 {
            ids.append(s.symbols[Int(i)])
            i = s.next[Int(i)]
        }
    }

    // MARK: Vocabulary

    package func isSpecialToken(_ id: Int32) -> Bool { specialIds.contains(id) }

    package func token(forId id: Int32) -> String? {
        guard id >= 0 && Int(id) < vocabularySize else { return nil }
        if let t = addedTokens[id] { return t.content }
        let k = spellingIndex[Int(id)]
        guard k >= 0 else { return nil }
        return String(decoding: vocabulary.key(at: Int(k)), as: UTF8.self)
    }

    package func id(forToken token: String) -> Int32? {
        if let t = addedTokens.values.first(where: { $0.content == token }) { return t.id }
        return vocabulary.value(for: Array(token.utf8))
    }

    package func piece(forId id: Int32, renderSpecial: Bool) -> [UInt8]? {
        guard id >= 0 && Int(id) < vocabularySize, let p = pieces[Int(id)] else { return nil }
        if specialIds.contains(id) && !renderSpecial { return [] }
        return p
    }

    // MARK: Decoding

    package func appendDecoded(_ id: Int32, to bytes: inout [UInt8], state: inout TokenDecodingState,
                              skipSpecialTokens: Bool) throws(LlavaError) {
        try checkId(id)
        guard let p = pieces[Int(id)] else {
            throw LlavaError(.invalidArgument, "token id \(id) has no text in this vocabulary")
        }
        if skipSpecialTokens && specialIds.contains(id) { return }
        bytes.append(contentsOf: p)
        if !p.isEmpty { state.textIsEmpty = false }
    }
}
