import LlavaUHD
import Testing

@Suite struct JSONTests {
    @Test func parsesNestedValues() throws {
        let v = try JSONValue.parse(#"{"a": [1, -2.5e3, true, null, "x\u00e9\ud83d\ude00"], "b": {"c": 0}}"#)
        #expect(v["a"]?.arrayValue?.count == 5)
        #expect(v["a"]?.arrayValue?[0] == .int(1))
        #expect(v["a"]?.arrayValue?[1] == .double(-2500))
        #expect(v["a"]?.arrayValue?[4].stringValue == "xé😀")
        #expect(v["b"]?["c"]?.intValue == 0)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "[1] x",
        "{\"a\":1,}", "tru", "\"a\u{01}\"", "[" + String(repeating: "[", count: 300) + "]",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsInvalidUTF8InStrings() {
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func keepsDuplicateKeysInOrder() throws {
        let v = try JSONValue.parse(#"{"k": 1, "k": 2}"#)
        #expect(v.objectValue?.count == 2)
        #expect(v["k"] == .int(1))
    }
}
