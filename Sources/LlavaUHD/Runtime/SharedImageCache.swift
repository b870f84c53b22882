import Synchronization

/// The model's cache of encoded images, shared by every session of the model on any thread: a
/// second session asking about a picture another session already encoded (same pixels, same
/// slicing options: `ImageKey`) takes its projector tokens from here and skips the vision tower,
/// VDIM and the projector. Bounded in bytes, least recently used first out, behind its own
/// lock, so the model stays immutable from its users' view (the cache never changes what a
/// session computes, only whether it computes it).
///
/// Sessions whose `ChatSession.Options.imageCacheCapacity` is 0 neither read nor fill it.
public final class SharedImageCache: Sendable {
    /// Most bytes of projector tokens kept (0 turns the cache off).
    public let byteCapacity: Int
    private let entries: Mutex<ImageEmbeddingCache>

    /// - Parameter byteCapacity: most bytes kept; a negative value counts as 0.
    public init(byteCapacity: Int) {
        self.byteCapacity = max(0, byteCapacity)
        entries = Mutex(ImageEmbeddingCache(capacity: byteCapacity > 0 ? .max : 0, byteCapacity: byteCapacity))
    }

    /// The cached encoding of `key`, marking it most recently used.
    public func lookup(_ key: ImageKey) -> EncodedImage? {
        entries.withLock { $0.lookup(key) }
    }

    /// Stores an encoding (see `ImageEmbeddingCache.insert`).
    public func insert(_ image: EncodedImage) {
        entries.withLock { $0.insert(image) }
    }

    /// Images and bytes held now.
    public var usage: (count: Int, bytes: Int) {
        entries.withLock { ($0.count, $0.byteCount) }
    }
}
