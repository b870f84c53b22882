import TestSupport
import Testing
@testable import LlavaUHD

/// `PromptBuilder`: the prompt side of a chat turn, on the small-noslice tiny model.
@Suite(.enabled(if: fileExists(Fixtures.model("small-noslice") + "/model.safetensors"), "needs the test assets"))
struct PromptBuilderTests {
    static func builder() throws -> PromptBuilder {
        let model = try LlavaModel(path: Fixtures.model("small-noslice"))
        return PromptBuilder(model: model, template: model.chatTemplate.map { ChatTemplate(kind: $0) },
                             slicing: SlicingOptions(preresizeLongSide: 0))
    }

    /// A follow-up turn's prompt starts with the previous turn's prompt and answer, so the
    /// cached positions are reused up to where the new turn starts, never the last position;
    /// a different image at the same place ends the reuse at its first position.
    @Test func prefixReuseStopsAtTheFirstDifference() throws {
        let b = try Self.builder()
        let image = try ImageDecoder.decodeFile(Fixtures.upstream("small-noslice") + "/input.png")
        let encoded = try b.model.encode(image, key: ImageKey(image: image, options: b.slicing), options: b.slicing,
                                         context: b.model.computeContext())
        let first = [ChatMessage.user("What is this?", images: 1)]
        let p1 = try b.prompt(ids: b.ids(of: first), images: [encoded])
        let second = first + [.assistant("A cat."), .user("Which colour?")]
        let p2 = try b.prompt(ids: b.ids(of: second), images: [encoded])
        let reused = PromptBuilder.reusablePrefix(cached: p1.keys, keys: p2.keys)
        // Reuse is the longest common prefix, and it covers the whole image (which is not
        // evaluated again).
        let shared = zip(p1.keys, p2.keys).prefix { $0 == $1 }.count
        #expect(reused == shared && reused < p2.keys.count)
        let lastImage = try #require(p1.keys.lastIndex { if case .image = $0 { true } else { false } })
        #expect(reused > lastImage)

        // The same prompt again: all but the last position.
        #expect(PromptBuilder.reusablePrefix(cached: p1.keys, keys: p1.keys) == p1.keys.count - 1)

        // Other pixels: the keys differ from the image's first position on.
        var pixels = image.pixels
        pixels[0] ^= 0xFF
        let other = RGBImage(width: image.width, height: image.height, pixels: pixels)
        let otherEncoded = try b.model.encode(other, key: ImageKey(image: other, options: b.slicing), options: b.slicing,
                                              context: b.model.computeContext())
        let p3 = try b.prompt(ids: b.ids(of: first), images: [otherEncoded])
        let firstImage = try #require(p1.keys.firstIndex { if case .image = $0 { true } else { false } })
        #expect(PromptBuilder.reusablePrefix(cached: p1.keys, keys: p3.keys) == firstImage)
    }

    @Test func placeholdersMustMatchTheImages() throws {
        let b = try Self.builder()
        #expect(try b.userTurn("Look: <image> and <image>", imageCount: 2)
                == .user("Look: <image> and <image>", images: 2, imagesInText: true))
        #expect(try b.userTurn("Describe.", imageCount: 1) == .user("Describe.", images: 1))
        // In a turn without images "<image>" is text (issue 12).
        #expect(try b.userTurn("What is <image>?", imageCount: 0) == .user("What is <image>?"))
        #expect(throws: LlavaError.self) { try b.userTurn("<image>", imageCount: 2) }
    }
}
