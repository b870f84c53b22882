import Testing
import TestSupport
@testable import LlavaUHD

/// The C header states a few of the Swift core's facts again, because C callers need them at
/// compile time; these tests read include/llavauhd.h and check each copy against its Swift home.
@Suite struct HeaderMirrorTests {
    /// The integer of `#define NAME (value)` or `#define NAME value` in the public header.
    static func headerDefine(_ name: String) throws -> Int? {
        let text = String(decoding: try readWholeFile(Fixtures.repoRoot + "/include/llavauhd.h"), as: UTF8.self)
        let prefix = "#define \(name) "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        let value = line.dropFirst(prefix.count).filter { $0 != "(" && $0 != ")" && $0 != " " }
        return Int(value)
    }

    @Test func imageTokenMatchesTheSwiftConstant() throws {
        #expect(try Self.headerDefine("LUHD_IMAGE_TOKEN") == Int(ChatTemplate.imageTokenId))
        #expect(MultimodalInput.imageMarker == Int(ChatTemplate.imageTokenId))
    }
}
