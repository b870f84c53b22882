/// A binary min-heap: `pop` returns the smallest element. Used as the merge agenda of both BPE
/// encoders (O(n log n) per word, so long inputs stay fast) and as the eviction order of
/// `PrefixCache` (least recently used leaf first).
struct BinaryHeap<Element: Comparable> {
    private var items: [Element] = []

    init(reservingCapacity n: Int = 0) {
        items.reserveCapacity(n)
    }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ e: Element) {
        items.append(e)
        items.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard h[i] < h[parent] else { break }
                h.swapAt(i, parent)
                i = parent
            }
        }
    }

    mutating func pop() -> Element? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        return items.withUnsafeMutableBufferPointer { h in
            let top = h[0]
            h[0] = last
            var i = 0
            let n = h.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < n && h[l] < h[best] { best = l }
                if r < n && h[r] < h[best] { best = r }
                if best == i { break }
                h.swapAt(i, best)
                i = best
            }
            return top
        }
    }
}
