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
        return try encodeImagePrompt(chunks: ChatTemplate.placeholderRanges(in: prompt).map { Array(prompt[$0]) })
    }

    /// Encodes a prompt already cut where its images go (`ChatTemplate.promptChunks`): as
    /// `encodeImagePrompt(utf8:)` with `imageTokenId` between consecutive chunks only; `<image>`
    /// inside a chunk is encoded as text. Throws `.invalidUTF8` for text that is not UTF-8.
    public func encodeImagePrompt(chunks texts: [[UInt8]]) throws(LlavaError) -> [Int32] {
        var chunks: [[Int32]] = []
        for text in texts {
            try UTF8Text.validate(text)
            chunks.append(try encode(utf8: text, addBOS: addsBOSByDefault, parseSpecial: true))
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
}
