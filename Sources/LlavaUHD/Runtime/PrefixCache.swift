import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The model's store of computed KV rows, shared by every session of the model on any thread,
/// as vLLM's automatic prefix caching and llama.cpp's server prompt cache share them: a session
/// whose prompt starts with positions that another session (or a loaded saved session) already
/// evaluated, such as the same system prompt and the same image, copies those rows instead of
/// recomputing them.
///
/// Rows are kept in blocks of `blockPositions` positions. A block is identified by the
/// `PromptBuilder.PositionKey`s of its positions and of every position before it (token ids;
/// for image positions the image's content hash, slicing options and slot), so it is found only
/// by a prompt that is the same up to its end: the keys of a position and of all before it
/// determine its keys and values. Blocks form a tree (a block's children continue it), one tree
/// per `KVCacheType`: rows computed in one storage type are only given to sessions of that type.
/// The rows come from another session's prefill pass, whose matrix products round differently
/// with its number of positions, so a reusing session computes what it would have computed to
/// float rounding (as its own follow-up turns do), not bit for bit: greedy answers are the same,
/// logits agree within the bounds `PrefixCacheTests` states.
///
/// Bounded in bytes (`byteCapacity`; 0 turns it off). When it is full, the least recently used
/// block without children leaves first. Lookups and insertions take a lock only to walk and
/// change the tree; rows are copied outside it (a block's rows never change once it is in the
/// tree, and a block evicted while a session copies from it stays alive until the copy ends).
public final class PrefixCache: @unchecked Sendable {
    /// Most bytes of KV rows kept (0: the cache is off).
    public let byteCapacity: Int
    /// Positions per block: prompts share rows in whole blocks, so up to this many positions
    /// of a common prefix (less one) are recomputed.
    public let blockPositions: Int

    /// `blockPositions` positions of KV rows for every layer: per layer, the key rows then the
    /// value rows (`[blockPositions × rowWidth]` values of the tree's type each).
    final class Block: @unchecked Sendable {
        let keys: [PromptBuilder.PositionKey]
        let storage: UnsafeMutableRawPointer
        let byteCount: Int
        // Changed only under the cache's lock.
        weak var parent: Block?
        var children: [[PromptBuilder.PositionKey]: Block] = [:]
        var lastUse: UInt64 = 0

        init?(keys: [PromptBuilder.PositionKey], byteCount: Int) {
            guard let storage = malloc(byteCount) else { return nil }
            self.keys = keys
            self.storage = storage
            self.byteCount = byteCount
        }

        deinit { free(storage) }
    }

    private struct Tree {
        var roots: [KVCacheType: [[PromptBuilder.PositionKey]: Block]] = [:]
        /// Every block in the trees, for eviction.
        var blocks: [ObjectIdentifier: Block] = [:]
        var byteCount = 0
        var clock: UInt64 = 0
    }

    private let tree = Mutex(Tree())

    /// - Parameters:
    ///   - byteCapacity: most bytes kept; 0 or less turns the cache off.
    ///   - blockPositions: positions per block (at least 1).
    public init(byteCapacity: Int, blockPositions: Int = 16) {
        self.byteCapacity = max(0, byteCapacity)
        self.blockPositions = max(1, blockPositions)
    }

    /// Blocks and bytes held now.
    public var usage: (blocks: Int, bytes: Int) {
        tree.withLock { ($0.blocks.count, $0.byteCount) }
    }

    /// Copies into `cache` the rows of positions `cache.count ..< end` that the store holds for
    /// a prompt whose positions have `keys` (from position 0), taking at most positions below
    /// `limit`, commits them and returns how many were copied (0 when the store has none).
    func restore(keys: [PromptBuilder.PositionKey], limit: Int, into cache: KVCache) -> Int {
        let start = cache.count, b = blockPositions
        let end = min(limit, keys.count, cache.capacity)
        guard byteCapacity > 0, end > start else { return 0 }
        // The chain of blocks matching the prompt, as long as it reaches past `start`.
        let path: [Block] = tree.withLock { t in
            var path: [Block] = []
            var children = t.roots[cache.type] ?? [:]
            t.clock += 1
            while (path.count + 1) * b <= keys.count, path.count * b < end {
                let i = path.count * b
                guard let next = children[Array(keys[i..<(i + b)])] else { break }
                next.lastUse = t.clock
                path.append(next)
                children = next.children
            }
            return path
        }
        let stop = min(end, path.count * b)
        guard stop > start else { return 0 }
        let rowBytes = cache.rowWidth * cache.type.bytesPerValue
        for blockIndex in (start / b)..<((stop + b - 1) / b) {
            let block = path[blockIndex]
            let first = max(start, blockIndex * b), last = min(stop, (blockIndex + 1) * b)
            let skip = (first - blockIndex * b) * rowBytes, bytes = (last - first) * rowBytes
            for layer in 0..<cache.layerCount {
                for (i, target) in [cache.keys(layer: layer), cache.values(layer: layer)].enumerated() {
                    let source = block.storage + (2 * layer + i) * b * rowBytes + skip
                    (target.base + first * rowBytes).copyMemory(from: source, byteCount: bytes)
                }
            }
        }
        cache.commit(count: stop)
        return stop - start
    }

    /// Offers the rows of `cache`'s positions, which hold `keys` (from position 0), to the
    /// store: every whole block it does not hold yet is copied in, then the least recently used
    /// blocks leave while the store is over its bound.
    func publish(keys: [PromptBuilder.PositionKey], cache: KVCache) {
        let b = blockPositions, rowBytes = cache.rowWidth * cache.type.bytesPerValue
        let blockBytes = 2 * cache.layerCount * b * rowBytes
        let wanted = min(keys.count, cache.count) / b
        guard byteCapacity >= blockBytes, wanted > 0 else { return }
        // How much of the chain the store holds already.
        let held: Int = tree.withLock { t in
            var children = t.roots[cache.type] ?? [:]
            var depth = 0
            t.clock += 1
            while depth < wanted, let next = children[Array(keys[(depth * b)..<((depth + 1) * b)])] {
                next.lastUse = t.clock
                children = next.children
                depth += 1
            }
            return depth
        }
        // At most what the bound can hold, nearest the root first.
        let last = min(wanted, held + byteCapacity / blockBytes)
        guard last > held else { return }
        var made: [Int: Block] = [:]
        for depth in held..<last {
            guard let block = Block(keys: Array(keys[(depth * b)..<((depth + 1) * b)]), byteCount: blockBytes) else { break }
            for layer in 0..<cache.layerCount {
                for (i, source) in [cache.keys(layer: layer), cache.values(layer: layer)].enumerated() {
                    (block.storage + (2 * layer + i) * b * rowBytes).copyMemory(from: source.base + depth * b * rowBytes,
                                                                               byteCount: b * rowBytes)
                }
            }
            made[depth] = block
        }
        tree.withLock { t in
            t.clock += 1
            var parent: Block?
            for depth in 0..<last {
                let key = Array(keys[(depth * b)..<((depth + 1) * b)])
                let existing = parent.map { $0.children[key] } ?? t.roots[cache.type]?[key]
                let block: Block
                if let existing {
                    block = existing
                } else if let fresh = made[depth] {
                    block = fresh
                    block.parent = parent
                    if let parent { parent.children[key] = block } else { t.roots[cache.type, default: [:]][key] = block }
                    t.blocks[ObjectIdentifier(block)] = block
                    t.byteCount += block.byteCount
                } else {
                    break  // a block before ours was evicted meanwhile: ours would be unreachable
                }
                block.lastUse = t.clock
                parent = block
            }
            Self.evict(&t, downTo: byteCapacity)
        }
    }

    /// A block that may leave, ordered by its last use.
    private struct EvictionCandidate: Comparable {
        let lastUse: UInt64
        let block: Block
        static func < (a: Self, b: Self) -> Bool { a.lastUse < b.lastUse }
        static func == (a: Self, b: Self) -> Bool { a.block === b.block }
    }

    /// Removes least recently used blocks without children until `t` holds at most `capacity`
    /// bytes. A block is used whenever a descendant is (lookups walk from the root), so a
    /// parent is never older than its children and the leaves in last-use order, with a parent
    /// joining them when its last child leaves, are the least recently used blocks: one heap of
    /// the leaves, O(n + k log n) for k removals among n blocks.
    private static func evict(_ t: inout Tree, downTo capacity: Int) {
        guard t.byteCount > capacity else { return }
        var leaves = BinaryHeap<EvictionCandidate>(reservingCapacity: t.blocks.count)
        for block in t.blocks.values where block.children.isEmpty {
            leaves.push(EvictionCandidate(lastUse: block.lastUse, block: block))
        }
        while t.byteCount > capacity, let victim = leaves.pop()?.block {
            if let parent = victim.parent {
                parent.children[victim.keys] = nil
                if parent.children.isEmpty { leaves.push(EvictionCandidate(lastUse: parent.lastUse, block: parent)) }
            } else {
                for type in KVCacheType.allCases where t.roots[type]?[victim.keys] === victim { t.roots[type]?[victim.keys] = nil }
            }
            t.blocks[ObjectIdentifier(victim)] = nil
            t.byteCount -= victim.byteCount
        }
    }
}
