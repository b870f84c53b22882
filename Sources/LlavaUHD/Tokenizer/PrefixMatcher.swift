/// Longest-prefix matching against a small set of byte strings: SentencePiece's user-defined
/// symbols (kept whole through normalization and never merged) and added/special tokens.
struct PrefixMatcher: Sendable {
    /// Candidates by first byte, longest first.
    private var byFirstByte: [[(key: [UInt8], value: Int32)]] = Array(repeating: [], count: 256)
    private(set) var isEmpty = true

    init() {}

    init(_ entries: [(key: [UInt8], value: Int32)]) {
        for e in entries { insert(e.key, value: e.value) }
    }

    mutating func insert(_ key: [UInt8], value: Int32) {
        guard let first = key.first else { return }
        var list = byFirstByte[Int(first)]
        if list.contains(where: { $0.key == key }) { return }
        list.append((key, value))
        list.sort { $0.key.count > $1.key.count }
        byFirstByte[Int(first)] = list
        isEmpty = false
    }

    /// The longest key that `text[start..<end]` starts with: its length and value.
    @inline(__always)
    func longestMatch(_ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> (length: Int, value: Int32)? {
        guard !isEmpty, start < end else { return nil }
        let list = byFirstByte[Int(text[start])]
        outer: for (key, value) in list where key.count <= end - start {
            for j in 1..<key.count where text[start + j] != key[j] { continue outer }
            return (key.count, value)
        }
        return nil
    }
}
