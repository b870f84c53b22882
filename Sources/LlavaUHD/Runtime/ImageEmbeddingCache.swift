/// A bounded least-recently-used cache of encoded images, keyed by content hash, so that asking
/// again about the same picture never runs the vision tower and projector again.
/// Owned by one session (one thread at a time).
package struct ImageEmbeddingCache: Sendable {
    /// Most images kept (0 disables the cache).
    package let capacity: Int
    private var entries: [ImageKey: EncodedImage] = [:]
    /// Keys from least to most recently used.
    private var order: [ImageKey] = []

    package init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    package var count: Int { entries.count }

    /// The cached encoding, marking it most recently used.
    package mutating func lookup(_ key: ImageKey) -> EncodedImage? {
        guard let hit = entries[key] else { return nil }
        touch(key)
        return hit
    }

    /// Stores an encoding, evicting the least recently used one when full.
    package mutating func insert(_ image: EncodedImage) {
        guard capacity > 0 else { return }
        if entries.updateValue(image, forKey: image.key) != nil {
            touch(image.key)
            return
        }
        order.append(image.key)
        if order.count > capacity {
            entries[order.removeFirst()] = nil
        }
    }

    package mutating func removeAll() {
        entries = [:]
        order = []
    }

    private mutating func touch(_ key: ImageKey) {
        if let i = order.firstIndex(of: key) { order.remove(at: i) }
        order.append(key)
    }
}
