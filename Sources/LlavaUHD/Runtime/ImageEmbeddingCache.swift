/// A bounded least-recently-used cache of encoded images, keyed by content hash, so that asking
/// again about the same picture never runs the vision tower and projector again. Bounded both in
/// entries and in bytes (`EncodedImage.byteCount`); the least recently used entries leave first
/// when either bound is passed. A value type: a session owns one (one thread at a time), and the
/// model's `SharedImageCache` keeps one behind its lock.
package struct ImageEmbeddingCache: Sendable {
    /// Most images kept (0 disables the cache).
    package let capacity: Int
    /// Most bytes of projector tokens kept (0 disables the cache). An image larger than this
    /// on its own is not kept.
    package let byteCapacity: Int
    private var entries: [ImageKey: EncodedImage] = [:]
    /// Keys from least to most recently used.
    private var order: [ImageKey] = []
    /// Bytes held by the entries.
    package private(set) var byteCount = 0

    package init(capacity: Int, byteCapacity: Int = .max) {
        self.capacity = max(0, capacity)
        self.byteCapacity = max(0, byteCapacity)
    }

    package var count: Int { entries.count }

    /// The cached encoding, marking it most recently used.
    package mutating func lookup(_ key: ImageKey) -> EncodedImage? {
        guard let hit = entries[key] else { return nil }
        touch(key)
        return hit
    }

    /// Stores an encoding as the most recently used one, evicting the least recently used ones
    /// while a bound is passed.
    package mutating func insert(_ image: EncodedImage) {
        let size = image.byteCount
        guard capacity > 0, size <= byteCapacity else { return }
        if let old = entries.updateValue(image, forKey: image.key) {
            byteCount -= old.byteCount
            touch(image.key)
        } else {
            order.append(image.key)
        }
        byteCount += size
        while order.count > capacity || byteCount > byteCapacity {
            let evicted = order.removeFirst()
            if let gone = entries.removeValue(forKey: evicted) { byteCount -= gone.byteCount }
        }
    }

    package mutating func removeAll() {
        entries = [:]
        order = []
        byteCount = 0
    }

    private mutating func touch(_ key: ImageKey) {
        if let i = order.firstIndex(of: key) { order.remove(at: i) }
        order.append(key)
    }
}
