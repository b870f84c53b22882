import LlavaUHD

/// JSON text as Python's `json.dumps` writes it by default (`", "` and `": "` separators,
/// `ensure_ascii`: every non-ASCII character as `\uXXXX`, astral ones as surrogate pairs), so the
/// answer files look like the ones upstream's scripts write.
enum JSONWriter {
    /// An object with members in the given order.
    static func object(_ members: [(String, JSONValue)]) -> String {
        "{" + members.map { string($0.0) + ": " + value($0.1) }.joined(separator: ", ") + "}"
    }

    static func value(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            guard d.isFinite else { return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity") }
            return d == d.rounded() && abs(d) < 1e16 ? String(Int(d)) + ".0" : String(d)
        case .string(let s): return string(s)
        case .array(let items): return "[" + items.map(Self.value).joined(separator: ", ") + "]"
        case .object(let members): return object(members)
        }
    }

    /// A string literal (`JSONValue.stringLiteral`: ensure_ascii escaping).
    static func string(_ s: String) -> String { JSONValue.stringLiteral(s) }
}
