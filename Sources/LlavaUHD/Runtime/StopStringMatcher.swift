/// Finds stop strings in streamed text. Text is released only once it can no longer be the
/// start of a stop string, so a stop string is never shown to the caller, even when it arrives
/// split across several tokens. Works on Unicode scalars, so released text is always whole
/// characters' scalars as the detokenizer produced them.
///
/// Each stop string is followed by a Knuth–Morris–Pratt automaton, so every scalar costs a
/// constant amount of work per stop string (amortized), however long the stop strings are and
/// however often they match partially.
package struct StopStringMatcher: Sendable {
    package let stopStrings: [[Unicode.Scalar]]
    /// KMP failure function of each stop string: for a matched prefix of length q + 1, the
    /// length of its longest proper prefix that is also its suffix.
    private let failure: [[Int]]
    /// How many leading scalars of each stop string the end of the text matches.
    private var matched: [Int]
    private var held: [Unicode.Scalar] = []
    /// True once a stop string has been seen; later input is ignored.
    package private(set) var stopped = false

    package init(_ stopStrings: [String]) {
        let strings = stopStrings.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
        self.stopStrings = strings
        failure = strings.map(Self.failureFunction)
        matched = Array(repeating: 0, count: strings.count)
    }

    static func failureFunction(_ s: [Unicode.Scalar]) -> [Int] {
        var f = Array(repeating: 0, count: s.count)
        var k = 0
        for q in 1..<max(s.count, 1) {
            while k > 0 && s[k] != s[q] { k = f[k - 1] }
            if s[k] == s[q] { k += 1 }
            f[q] = k
        }
        return f
    }

    /// Adds streamed text; returns what can be released now.
    package mutating func feed(_ text: String) -> String {
        guard !stopped else { return "" }
        guard !stopStrings.isEmpty else { return text }
        let first = held.count
        held.append(contentsOf: text.unicodeScalars)
        // A complete stop string: release what precedes the earliest-starting occurrence in
        // this text, then stop.
        var cut: Int?
        for i in first..<held.count {
            let c = held[i]
            for k in stopStrings.indices {
                let s = stopStrings[k]
                var q = matched[k]
                while q > 0 && s[q] != c { q = failure[k][q - 1] }
                if s[q] == c { q += 1 }
                if q == s.count {
                    cut = min(cut ?? Int.max, i + 1 - s.count)
                    q = failure[k][q - 1]
                }
                matched[k] = q
            }
        }
        if let cut {
            stopped = true
            let out = String(String.UnicodeScalarView(held[..<cut]))
            held = []
            return out
        }
        // Hold back the longest tail that could still grow into a stop string.
        let keep = matched.max() ?? 0
        let out = String(String.UnicodeScalarView(held[..<(held.count - keep)]))
        held.removeFirst(held.count - keep)
        return out
    }

    /// Releases whatever is held at the end of generation.
    package mutating func finish() -> String {
        defer { held = [] }
        return stopped ? "" : String(String.UnicodeScalarView(held))
    }
}
