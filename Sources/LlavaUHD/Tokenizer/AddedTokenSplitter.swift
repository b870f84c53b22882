/// Splits text on added-token text before the model encodes it, as Hugging Face tokenizers do:
/// the leftmost match wins, the longest at that position; `lstrip` / `rstrip` tokens also take
/// the whitespace next to them; a `singleWord` match inside a word does not count.
struct AddedTokenSplitter: Sendable {
    enum Segment: Equatable {
        /// A byte range of plain text.
        case text(Range<Int>)
        case token(Int32)
    }

    private let matcher: PrefixMatcher
    /// By id: (lstrip, rstrip, singleWord).
    private let options: [Int32: (lstrip: Bool, rstrip: Bool, singleWord: Bool)]

    init(_ tokens: [AddedToken]) {
        matcher = PrefixMatcher(tokens.map { (Array($0.content.utf8), $0.id) })
        var options: [Int32: (Bool, Bool, Bool)] = [:]
        for t in tokens where t.lstrip || t.rstrip || t.singleWord { options[t.id] = (t.lstrip, t.rstrip, t.singleWord) }
        self.options = options
    }

    var isEmpty: Bool { matcher.isEmpty }

    /// The segments of valid UTF-8 `text`, in order; empty text ranges are left out.
    func split(_ text: [UInt8]) -> [Segment] {
        guard !matcher.isEmpty else { return text.isEmpty ? [] : [.text(0..<text.count)] }
        return text.withUnsafeBufferPointer { b in
            var segments: [Segment] = []
            var textStart = 0
            var i = 0
            while i < b.count {
                guard let m = matcher.longestMatch(b, at: i, end: b.count) else { i += 1; continue }
                var start = i, end = i + m.length
                if let o = options[m.value] {
                    if o.singleWord && (Self.endsWithWordCharacter(b, before: start) || Self.startsWithWordCharacter(b, at: end)) {
                        i = end
                        continue
                    }
                    if o.lstrip { start = Self.whitespaceStart(b, before: start, limit: textStart) }
                    if o.rstrip { end = Self.whitespaceEnd(b, from: end) }
                }
                if start > textStart { segments.append(.text(textStart..<start)) }
                segments.append(.token(m.value))
                textStart = end
                i = end
            }
            if textStart < b.count { segments.append(.text(textStart..<b.count)) }
            return segments
        }
    }

    /// The scalar that ends just before `end` (valid UTF-8 assumed).
    private static func scalar(_ b: UnsafeBufferPointer<UInt8>, endingAt end: Int) -> (Unicode.Scalar, Int)? {
        guard end > 0 else { return nil }
        var s = end - 1
        while s > 0 && b[s] & 0xC0 == 0x80 { s -= 1 }
        guard let n = UTF8Text.validSequenceLength(b, at: s), s + n == end,
              let u = Unicode.Scalar(UTF8Text.scalar(b, at: s, length: n)) else { return nil }
        return (u, s)
    }

    private static func scalar(_ b: UnsafeBufferPointer<UInt8>, startingAt start: Int) -> (Unicode.Scalar, Int)? {
        guard start < b.count, let n = UTF8Text.validSequenceLength(b, at: start),
              let u = Unicode.Scalar(UTF8Text.scalar(b, at: start, length: n)) else { return nil }
        return (u, start + n)
    }

    private static func isWordCharacter(_ u: Unicode.Scalar) -> Bool {
        u == "_" || u.properties.isAlphabetic || u.properties.numericType != nil
    }

    private static func endsWithWordCharacter(_ b: UnsafeBufferPointer<UInt8>, before i: Int) -> Bool {
        scalar(b, endingAt: i).map { isWordCharacter($0.0) } ?? false
    }

    private static func startsWithWordCharacter(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        scalar(b, startingAt: i).map { isWordCharacter($0.0) } ?? false
    }

    private static func whitespaceStart(_ b: UnsafeBufferPointer<UInt8>, before i: Int, limit: Int) -> Int {
        var s = i
        while s > limit, let (u, p) = scalar(b, endingAt: s), p >= limit, u.properties.isWhitespace { s = p }
        return s
    }

    private static func whitespaceEnd(_ b: UnsafeBufferPointer<UInt8>, from i: Int) -> Int {
        var e = i
        while let (u, next) = scalar(b, startingAt: e), u.properties.isWhitespace { e = next }
        return e
    }
}
