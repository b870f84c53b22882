/// Longest-prefix matching against a set of byte strings: SentencePiece's user-defined symbols
/// (kept whole through normalization and never merged) and added/special tokens.
///
/// A byte trie: inserting a key and finding the longest key at a position both cost its length,
/// whatever the number of keys (a tokenizer_config.json may add tens of thousands of tokens
/// that share a first byte, "<"). Node 0 is the root; an edge is one dictionary entry.
struct PrefixMatcher: Sendable {
    /// Child node by (parent node << 8 | byte).
    private var edges: [Int: Int32] = [:]
    /// The value of the key that ends at each node, if one does.
    private var values: [Int32?] = [nil]
    /// Whether some key starts with each byte: most text positions are rejected by one array
    /// read, without hashing.
    private var startsKey = [Bool](repeating: false, count: 256)
    private(set) var isEmpty = true

    init() {}

    init(_ entries: [(key: [UInt8], value: Int32)]) {
        for e in entries { insert(e.key, value: e.value) }
    }

    /// Adds `key` (a key added twice keeps its first value; the empty key is ignored).
    mutating func insert(_ key: [UInt8], value: Int32) {
        guard let first = key.first else { return }
        startsKey[Int(first)] = true
        var node = 0
        for byte in key {
            let edge = node << 8 | Int(byte)
            if let next = edges[edge] {
                node = Int(next)
            } else {
                values.append(nil)
                edges[edge] = Int32(values.count - 1)
                node = values.count - 1
            }
        }
        if values[node] == nil { values[node] = value }
        isEmpty = false
    }

    /// The longest key that `text[start..<end]` starts with: its length and value.
    @inline(__always)
    func longestMatch(_ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> (length: Int, value: Int32)? {
        guard !isEmpty, start < end, startsKey[Int(text[start])] else { return nil }
        var node = 0
        var best: (length: Int, value: Int32)?
        var i = start
        while i < end, let next = edges[node << 8 | Int(text[i])] {
            node = Int(next)
            i += 1
            if let value = values[node] { best = (i - start, value) }
        }
        return best
    }
}
