extension Tokenizer {
    /// Encodes a prompt with image placeholders as upstream's `tokenizer_image_token`
    /// (llava/mm_utils.py, both branches) does (docs/MODEL.md §5.1): the prompt is split on
    /// `"<image>"`, each chunk is encoded as `tokenizer(chunk)` would (BOS when
    /// `addsBOSByDefault`, special-token text parsed), the BOS is kept only on the first chunk,
    /// and `ChatTemplate.imageTokenId` (−200) goes between chunks.
    ///
    /// Throws `.invalidUTF8` for text that is not UTF-8.
    public func encodeImagePrompt(utf8 prompt: [UInt8]) throws(LlavaError) -> [Int32] {
        try UTF8Text.validate(prompt)
        var chunks: [[Int32]] = []
        for range in Self.chunkRanges(prompt, separator: Array(ChatTemplate.imagePlaceholder.utf8)) {
            chunks.append(try encode(utf8: Array(prompt[range]), addBOS: addsBOSByDefault, parseSpecial: true))
        }
        var ids: [Int32] = []
        var offset = 0
        if let first = chunks.first?.first, let bos = bosTokenId, first == bos {
            offset = 1
            ids.append(first)
        }
        for (i, chunk) in chunks.enumerated() {
            if i > 0 { ids.append(ChatTemplate.imageTokenId) }
            ids.append(contentsOf: chunk.dropFirst(offset))
        }
        return ids
    }

    /// Encodes a prompt string with image placeholders (see `encodeImagePrompt(utf8:)`).
    public func encodeImagePrompt(_ prompt: String) throws(LlavaError) -> [Int32] {
        try encodeImagePrompt(utf8: Array(prompt.utf8))
    }

    /// The byte ranges between occurrences of `separator` (Python's `str.split(sep)`: n
    /// separators give n + 1 ranges, possibly empty).
    static func chunkRanges(_ text: [UInt8], separator: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0, i = 0
        while i + separator.count <= text.count {
            if text[i] == separator[0] && text[i..<(i + separator.count)].elementsEqual(separator) {
                ranges.append(start..<i)
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        ranges.append(start..<text.count)
        return ranges
    }
}
