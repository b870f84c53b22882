/// The longest text a tokenizer encodes. The merge loops of both tokenizers hold positions in
/// the normalized text as `Int32` (as token ids are: half the memory of `Int` in their hot
/// arrays), so a text whose normalized form is longer than `Int32.max` bytes is refused with
/// `.invalidArgument` instead of trapping on the narrowing. (No context comes near it: such a
/// text is hundreds of millions of tokens.)
package enum TokenizerInputLimit {
    /// Bytes of normalized text, at most.
    package static let maxNormalizedBytes = Int(Int32.max)

    /// Throws `.invalidArgument` when `normalizedBytes` (the normalized length, or an upper bound
    /// on it) is over the limit; `textBytes` is the length the caller gave.
    package static func check(normalizedBytes: Int, textBytes: Int) throws(LlavaError) {
        guard normalizedBytes <= maxNormalizedBytes else {
            throw LlavaError(.invalidArgument, "a text of \(textBytes) bytes is too long to tokenize "
                             + "(at most \(maxNormalizedBytes) bytes once normalized)")
        }
    }
}
