/// Finds stop strings in streamed text. Text is released only once it can no longer be the
/// start of a stop string, so a stop string is never shown to the caller, even when it arrives
/// split across several tokens. Works on Unicode scalars, so released text is always whole
/// characters' scalars as the detokenizer produced them.
package struct StopStringMatcher: Sendable {
    package let stopStrings: [[Unicode.Scalar]]
    private var held: [Unicode.Scalar] = []
    /// True once a stop string has been seen; later input is ignored.
    package private(set) var stopped = false

    package init(_ stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Adds streamed text; returns what can be released now.
    package mutating func feed(_ text: String) -> String {
        guard !stopped else { return "" }
        guard !stopStrings.isEmpty else { return text }
        held.append(contentsOf: text.unicodeScalars)
        // A complete stop string: release what precedes its earliest occurrence, then stop.
        if let cut = earliestMatch() {
            stopped = true
            let out = String(String.UnicodeScalarView(held[..<cut]))
            held = []
            return out
        }
        // Hold back the longest tail that could still grow into a stop string.
        let keep = longestPartialTail()
        let out = String(String.UnicodeScalarView(held[..<(held.count - keep)]))
        held.removeFirst(held.count - keep)
        return out
    }

    /// Releases whatever is held at the end of generation.
    package mutating func finish() -> String {
        defer { held = [] }
        return stopped ? "" : String(String.UnicodeScalarView(held))
    }

    private func earliestMatch() -> Int? {
        var best: Int?
        for s in stopStrings where s.count <= held.count {
            var i = 0
            while i + s.count <= held.count {
                if held[i] == s[0], Array(held[i..<(i + s.count)]) == s {
                    best = min(best ?? i, i)
                    break
                }
                i += 1
            }
        }
        return best
    }

    private func longestPartialTail() -> Int {
        var keep = 0
        for s in stopStrings {
            var n = min(s.count - 1, held.count)
            while n > keep {
                if Array(held[(held.count - n)...]) == Array(s[..<n]) { keep = n; break }
                n -= 1
            }
        }
        return keep
    }
}
