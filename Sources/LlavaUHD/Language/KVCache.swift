#if canImport(Glibc)
import Glibc
#endif

/// The keys and values of every position a decoder has evaluated, for every layer: what lets
/// a conversation continue one token at a time without recomputing its past.
///
/// Storage is float32 and preallocated for `capacity` positions: per layer a key and a value
/// matrix `[capacity × kvHeads·headDim]` (grouped-query models store only their key/value
/// heads), one row per position. The memory is reserved up front but the operating system
/// commits it only as positions are written. Size: `KVCache.byteCount(config:capacity:)`
/// (Vicuna-7B: 0.5 MiB per position, 2 GiB at 4096; Qwen2-7B: 56 KiB per position).
///
/// `count` positions are valid; evaluating more appends after them. `truncate(to:)` rewinds
/// (to reuse a shared prefix in a multi-turn conversation or drop a rejected turn); a
/// computation that fails or is cancelled leaves `count` as it was. One thread at a time may
/// use a cache; it belongs to one conversation.
package final class KVCache: @unchecked Sendable {
    /// Positions the cache can hold.
    package let capacity: Int
    /// Decoder layers.
    package let layerCount: Int
    /// Floats per position per layer in each of K and V (kvHeads · headDim).
    package let rowWidth: Int
    /// Positions evaluated so far (the next evaluated position gets this index).
    package private(set) var count: Int = 0

    private let keys: [UnsafeMutablePointer<Float>]
    private let values: [UnsafeMutablePointer<Float>]

    /// A cache for `capacity` positions of the model `config` describes. Throws
    /// `.invalidArgument` when `capacity` is not in 1...max_position_embeddings, and
    /// `.outOfMemory` when the buffers cannot be reserved.
    package init(config: LanguageModelConfig, capacity: Int) throws(LlavaError) {
        guard capacity >= 1, capacity <= config.maxPositionEmbeddings else {
            throw LlavaError(.invalidArgument,
                             "KV cache capacity \(capacity) must be between 1 and the model's max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        self.capacity = capacity
        self.layerCount = config.layerCount
        self.rowWidth = config.kvHeadCount * config.headDim
        let (floats, overflow) = capacity.multipliedReportingOverflow(by: rowWidth)
        guard !overflow, floats < Int.max / 8 else {
            throw LlavaError(.outOfMemory, "a KV cache of \(capacity) positions × \(rowWidth) floats is too large")
        }
        var buffers: [UnsafeMutablePointer<Float>] = []
        for _ in 0..<(2 * config.layerCount) {
            guard let raw = malloc(floats * MemoryLayout<Float>.size) else {
                for b in buffers { free(b) }
                throw LlavaError(.outOfMemory,
                                 "cannot reserve a KV cache of \(KVCache.byteCount(config: config, capacity: capacity)) bytes (\(capacity) positions)")
            }
            buffers.append(raw.assumingMemoryBound(to: Float.self))
        }
        keys = Array(buffers[0..<config.layerCount])
        values = Array(buffers[config.layerCount...])
    }

    deinit {
        for p in keys { free(p) }
        for p in values { free(p) }
    }

    /// Bytes of K and V storage for `capacity` positions of `config` (all layers).
    package static func byteCount(config: LanguageModelConfig, capacity: Int) -> Int {
        2 * config.layerCount * capacity * config.kvHeadCount * config.headDim * MemoryLayout<Float>.size
    }

    /// Positions still free.
    package var remaining: Int { capacity - count }

    /// Forgets every position from `position` on, so the next evaluation continues at
    /// `position`. Throws `.invalidArgument` unless `0 ≤ position ≤ count`.
    package func truncate(to position: Int) throws(LlavaError) {
        guard position >= 0, position <= count else {
            throw LlavaError(.invalidArgument, "cannot truncate the KV cache to position \(position): it holds \(count) positions")
        }
        count = position
    }

    /// Forgets every position.
    package func reset() { count = 0 }

    /// The key matrix of `layer` (`[capacity × rowWidth]`).
    func keys(layer: Int) -> UnsafeMutablePointer<Float> { keys[layer] }
    /// The value matrix of `layer` (`[capacity × rowWidth]`).
    func values(layer: Int) -> UnsafeMutablePointer<Float> { values[layer] }

    /// Marks positions up to `newCount` as valid, after a computation wrote all their layers.
    func commit(count newCount: Int) {
        precondition(newCount >= count && newCount <= capacity, "KV cache commit out of range")
        count = newCount
    }
}
