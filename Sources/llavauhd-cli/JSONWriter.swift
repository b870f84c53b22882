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

    /// A string literal.
    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                let v = scalar.value
                if v < 0x20 || v > 0x7E {
                    if v > 0xFFFF {
                        let u = v - 0x10000
                        out += hex4(0xD800 + (u >> 10)) + hex4(0xDC00 + (u & 0x3FF))
                    } else {
                        out += hex4(v)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// `\u` and four lowercase hex digits.
    private static func hex4(_ v: UInt32) -> String {
        let digits = Array("0123456789abcdef")
        var out = "\\u"
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((v >> UInt32(shift)) & 0xF)]) }
        return out
    }
}
