/// Unicode Normalization Form C (UAX #15): canonical decomposition, canonical ordering of
/// combining marks, then canonical composition. Qwen2's tokenizer applies it before splitting.
///
/// The data (combining classes, decompositions, primary composites) comes from Python's
/// `unicodedata` through scripts/dev/generate_unicode_nfc_tables.py (`UnicodeNFCTables`); Hangul
/// syllables are decomposed and composed algorithmically.
enum UnicodeNFC {
    private static let sBase: UInt32 = 0xAC00, lBase: UInt32 = 0x1100, vBase: UInt32 = 0x1161, tBase: UInt32 = 0x11A7
    private static let lCount: UInt32 = 19, vCount: UInt32 = 21, tCount: UInt32 = 28
    private static let nCount = vCount * tCount, sCount = lCount * nCount

    /// The canonical combining class of a scalar.
    static func combiningClass(_ s: UInt32) -> UInt8 {
        guard s >= 0x300 else { return 0 }
        let table = UnicodeNFCTables.combiningClasses
        var lo = 0, hi = table.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let key = table[mid] >> 8
            if key == s { return UInt8(table[mid] & 0xFF) }
            if key < s { lo = mid + 1 } else { hi = mid }
        }
        return 0
    }

    /// Appends the full canonical decomposition of `s`.
    static func decompose(_ s: UInt32, into out: inout [UInt32]) {
        if s < 0xC0 { out.append(s); return }
        if s >= sBase && s < sBase + sCount {
            let index = s - sBase
            out.append(lBase + index / nCount)
            out.append(vBase + (index % nCount) / tCount)
            if index % tCount != 0 { out.append(tBase + index % tCount) }
            return
        }
        let keys = UnicodeNFCTables.decompositionKeys
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if keys[mid] == s {
                let r = UnicodeNFCTables.decompositionRanges[mid]
                let start = Int(r >> 3)
                out.append(contentsOf: UnicodeNFCTables.decompositionScalars[start..<(start + Int(r & 7))])
                return
            }
            if keys[mid] < s { lo = mid + 1 } else { hi = mid }
        }
        out.append(s)
    }

    /// The primary composite of a pair, if there is one.
    static func compose(_ a: UInt32, _ b: UInt32) -> UInt32? {
        if a >= lBase && a < lBase + lCount && b >= vBase && b < vBase + vCount {
            return sBase + ((a - lBase) * vCount + (b - vBase)) * tCount
        }
        if a >= sBase && a < sBase + sCount && (a - sBase) % tCount == 0 && b > tBase && b < tBase + tCount {
            return a + (b - tBase)
        }
        let key = UInt64(a) << 21 | UInt64(b)
        let pairs = UnicodeNFCTables.compositionPairs
        var lo = 0, hi = pairs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pairs[mid] == key { return UnicodeNFCTables.compositionResults[mid] }
            if pairs[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }

    /// The NFC form of valid UTF-8 text. Text below U+0300 with no decomposable scalars is
    /// returned as is without decoding.
    static func normalize(_ text: ArraySlice<UInt8>) -> [UInt8] {
        // Fast path: ASCII and Latin-1 letters stay unchanged unless a combining mark follows,
        // and every scalar below U+0300 has combining class 0; bytes ≥ 0xCC start scalars from
        // U+0300 on.
        if !text.contains(where: { $0 >= 0xCC }) { return Array(text) }

        var scalars: [UInt32] = []
        scalars.reserveCapacity(text.count)
        Array(text).withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                let n = UTF8Text.validSequenceLength(b, at: i) ?? 1
                decompose(UTF8Text.scalar(b, at: i, length: n), into: &scalars)
                i += n
            }
        }
        reorder(&scalars)
        composeInPlace(&scalars)
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for s in scalars { UTF8Text.append(s, to: &out) }
        return out
    }

    /// Canonical ordering: each run of non-starters is stably sorted by combining class.
    private static func reorder(_ s: inout [UInt32]) {
        var i = 0
        while i < s.count {
            guard combiningClass(s[i]) != 0 else { i += 1; continue }
            var j = i
            while j < s.count && combiningClass(s[j]) != 0 { j += 1 }
            if j - i > 1 {
                // Sorting by (class, position) is a stable sort by class.
                var run = (i..<j).map { (cls: combiningClass(s[$0]), index: $0, scalar: s[$0]) }
                run.sort { ($0.cls, $0.index) < ($1.cls, $1.index) }
                for (k, e) in run.enumerated() { s[i + k] = e.scalar }
            }
            i = j
        }
    }

    /// Canonical composition: each scalar joins the last starter when nothing between them
    /// blocks it (a blocker has class 0 or a class at least as high as the scalar's).
    private static func composeInPlace(_ s: inout [UInt32]) {
        guard !s.isEmpty else { return }
        var out = 0
        var starter = -1
        var lastClass: UInt8 = 0
        for i in 0..<s.count {
            let c = s[i]
            let cls = combiningClass(c)
            if starter >= 0 {
                let adjacent = out - 1 == starter
                if adjacent || (lastClass != 0 && lastClass < cls), let composite = compose(s[starter], c) {
                    s[starter] = composite
                    continue
                }
            }
            if cls == 0 {
                starter = out
                lastClass = 0
            } else {
                lastClass = cls
            }
            s[out] = c
            out += 1
        }
        s.removeLast(s.count - out)
    }
}
