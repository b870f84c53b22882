#if canImport(Glibc)
import Glibc
#endif

/// The keys and values of every position a decoder has evaluated, for every layer: what lets
/// a conversation continue one token at a time without recomputing its past.
///
/// Storage is `type` (float32 unless chosen; sessions use `KVCacheType.sessionDefault`, 16
/// bits) and preallocated for `capacity` positions: per layer a key and a value matrix
/// `[capacity × kvHeads·headDim]` (grouped-query models store only their key/value heads), one
/// row per position. The memory is reserved up front but the operating system commits it only
/// as positions are written (in steps of up to 2 MiB per matrix, `StreamedBuffer`). Size: `KVCache.byteCount(config:capacity:type:)` (Vicuna-7B in
/// float32: 0.5 MiB per position, 2 GiB at 4096, half that in 16 bits; Qwen2-7B in float32:
/// 56 KiB per position).
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
    /// Values per position per layer in each of K and V (kvHeads · headDim).
    package let rowWidth: Int
    /// How the values are stored.
    package let type: KVCacheType
    /// Positions evaluated so far (the next evaluated position gets this index).
    package private(set) var count: Int = 0

    /// Per layer (`StreamedBuffer`: huge pages where the system gives them, since attention
    /// reads a head's rows `rowWidth` values apart).
    private let keys: [StreamedBuffer]
    private let values: [StreamedBuffer]

    /// A cache for `capacity` positions of the model `config` describes, stored as `type`. Throws
    /// `.invalidArgument` when `capacity` is not in 1...max_position_embeddings, and
    /// `.outOfMemory` when the buffers cannot be reserved.
    package init(config: LanguageModelConfig, capacity: Int, type: KVCacheType = .float32) throws(LlavaError) {
        guard capacity >= 1, capacity <= config.maxPositionEmbeddings else {
            throw LlavaError(.invalidArgument,
                             "KV cache capacity \(capacity) must be between 1 and the model's max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        self.capacity = capacity
        self.layerCount = config.layerCount
        self.rowWidth = config.kvHeadCount * config.headDim
        self.type = type
        let (elements, overflow) = capacity.multipliedReportingOverflow(by: rowWidth)
        guard !overflow, elements < Int.max / 8 else {
            throw LlavaError(.outOfMemory, "a KV cache of \(capacity) positions × \(rowWidth) values is too large")
        }
        var buffers: [StreamedBuffer] = []
        for _ in 0..<(2 * config.layerCount) {
            guard let raw = StreamedBuffer(byteCount: elements * type.bytesPerValue) else {
                throw LlavaError(.outOfMemory,
                                 "cannot reserve a KV cache of \(KVCache.byteCount(config: config, capacity: capacity, type: type)) bytes (\(capacity) positions)")
            }
            buffers.append(raw)
        }
        keys = Array(buffers[0..<config.layerCount])
        values = Array(buffers[config.layerCount...])
    }

    /// Bytes of K and V storage for `capacity` positions of `config` (all layers) stored as `type`.
    package static func byteCount(config: LanguageModelConfig, capacity: Int, type: KVCacheType = .float32) -> Int {
        2 * config.layerCount * capacity * config.kvHeadCount * config.headDim * type.bytesPerValue
    }

    /// Bytes one position takes in all layers' keys and values (what decoding reads per
    /// cached position and token).
    package var bytesPerPosition: Int { 2 * layerCount * rowWidth * type.bytesPerValue }

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

    /// The key matrix of `layer` (`[capacity × rowWidth]` values of `type`).
    package func keys(layer: Int) -> KVMatrix { KVMatrix(base: keys[layer].bytes, type: type, stride: rowWidth) }
    /// The value matrix of `layer` (`[capacity × rowWidth]` values of `type`).
    package func values(layer: Int) -> KVMatrix { KVMatrix(base: values[layer].bytes, type: type, stride: rowWidth) }

    /// Marks positions up to `newCount` as valid, after a computation wrote all their layers
    /// (or a benchmark stored made-up keys and values there).
    package func commit(count newCount: Int) {
        precondition(newCount >= count && newCount <= capacity, "KV cache commit out of range")
        count = newCount
    }
}
