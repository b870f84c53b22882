/// SentencePiece's text normalization before encoding (sentencepiece `normalizer.cc`):
/// user-defined symbols pass through untouched, the compiled character map (if any) rewrites
/// the longest matching prefix, extra whitespace is dropped if asked, spaces become "▁", and a
/// dummy "▁" is put in front (or at the end, for `treat_whitespace_as_suffix`).
struct SentencePieceNormalizer: Sendable {
    let spec: SentencePieceModelProto.NormalizerSpec
    let treatWhitespaceAsSuffix: Bool
    let charsMap: PrecompiledCharsMap?
    let userDefined: PrefixMatcher

    static let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581 "▁"

    init(spec: SentencePieceModelProto.NormalizerSpec, treatWhitespaceAsSuffix: Bool,
         userDefined: PrefixMatcher, context: String) throws(LlavaError) {
        self.spec = spec
        self.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix
        self.userDefined = userDefined
        charsMap = spec.precompiledCharsMap.isEmpty
            ? nil : try PrecompiledCharsMap(blob: spec.precompiledCharsMap, context: context)
    }

    /// The normalized form of one prefix of `input[i...]`: the replacement bytes (a slice of
    /// the input, of the rule table, or U+FFFD) and how many input bytes it consumes.
    @inline(__always)
    private func normalizePrefix(_ input: UnsafeBufferPointer<UInt8>, at i: Int,
                                 into out: inout [UInt8]) -> Int {
        if let m = userDefined.longestMatch(input, at: i, end: input.count) {
            out.append(contentsOf: input[i..<(i + m.length)])
            return m.length
        }
        if let charsMap, let m = charsMap.longestMatch(input, from: i, to: input.count) {
            out.append(contentsOf: m.replacement)
            return m.length
        }
        if let n = UTF8Text.validSequenceLength(input, at: i) {
            out.append(contentsOf: input[i..<(i + n)])
            return n
        }
        out.append(contentsOf: UTF8Text.replacementCharacter)
        return 1
    }

    /// Normalizes UTF-8 text. `addDummyPrefix` overrides the spec's flag (Hugging Face's
    /// non-legacy LLaMA tokenizer runs SentencePiece without the dummy prefix).
    func normalize(_ text: [UInt8], addDummyPrefix: Bool) -> [UInt8] {
        guard !text.isEmpty else { return [] }
        return text.withUnsafeBufferPointer { input in
            var i = 0
            var piece: [UInt8] = []
            piece.reserveCapacity(16)

            if spec.removeExtraWhitespaces {
                // Skip leading input whose normalized form is exactly one space.
                while i < input.count {
                    piece.removeAll(keepingCapacity: true)
                    let consumed = normalizePrefix(input, at: i, into: &piece)
                    guard piece == [0x20] else { break }
                    i += consumed
                }
            }
            guard i < input.count else { return [] }

            var out: [UInt8] = []
            out.reserveCapacity(input.count * 3)
            let space: [UInt8] = spec.escapeWhitespaces ? Self.spaceSymbol : [0x20]
            if !treatWhitespaceAsSuffix && addDummyPrefix { out.append(contentsOf: space) }

            var isPrevSpace = spec.removeExtraWhitespaces
            while i < input.count {
                piece.removeAll(keepingCapacity: true)
                let consumed = normalizePrefix(input, at: i, into: &piece)
                var s = 0
                // Drop spaces at the start of this piece if the previous piece ended with one.
                while isPrevSpace && s < piece.count && piece[s] == 0x20 { s += 1 }
                if s < piece.count {
                    for b in piece[s...] {
                        if b == 0x20 && spec.escapeWhitespaces {
                            out.append(contentsOf: Self.spaceSymbol)
                        } else {
                            out.append(b)
                        }
                    }
                    isPrevSpace = piece.last == 0x20
                }
                i += consumed
                if !spec.removeExtraWhitespaces { isPrevSpace = false }
            }

            if spec.removeExtraWhitespaces {
                while out.count >= space.count && out[(out.count - space.count)...].elementsEqual(space) {
                    out.removeLast(space.count)
                }
            }
            if treatWhitespaceAsSuffix && addDummyPrefix { out.append(contentsOf: space) }
            return out
        }
    }
}
