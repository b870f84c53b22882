/// Turns a conversation into the LLM input, as upstream builds it: the template around the
/// messages, `tokenizer_image_token` ids with −200 where each image goes, the images'
/// positions laid out by the model's `ImageTokenLayout`, and one `PositionKey` per position
/// so that a session can tell how much of a new prompt its cache already holds. Used by both
/// `ChatSession.chat` (messages in) and `ChatSession.eval` (ids in), in the way mlx-swift-lm's
/// `UserInputProcessor.prepare` serves its generators.
struct PromptBuilder {
    /// What one cached position holds: a token id, or one position of an image (identified by
    /// its pixels and slicing options).
    enum PositionKey: Hashable {
        case token(Int)
        case image(ImageKey, element: MultimodalInput.Element)
    }

    /// A prompt ready to evaluate: its merged input and the key of every position.
    struct Prompt {
        let input: MultimodalInput
        let keys: [PositionKey]
    }

    let model: LlavaModel
    /// nil when the model has no template (a text-only LLM whose `chat_template` was not
    /// recognised): `ids(of:)` then refuses.
    let template: ChatTemplate?
    let slicing: SlicingOptions

    /// How images enter the LLM input (a text-only LLM has no images: any layout will do).
    var layout: ImageTokenLayout { model.vision?.config.imageTokenLayout ?? .perSlice }

    /// The user turn of `text` with `imageCount` images: in a turn with images, `text` may hold
    /// one `<image>` placeholder per image; without any, the images go before the text
    /// (`<image>\n`, as upstream's eval scripts do). In a turn without images `<image>` is plain
    /// text. Throws `.invalidArgument` for another placeholder count.
    func userTurn(_ text: String, imageCount: Int) throws(LlavaError) -> ChatMessage {
        let placeholders = ChatTemplate.placeholderRanges(in: Array(text.utf8)).count - 1
        guard imageCount == 0 || placeholders == 0 || placeholders == imageCount else {
            throw LlavaError(.invalidArgument,
                             "the text has \(placeholders) <image> placeholder(s) but \(imageCount) image(s) were given")
        }
        return ChatMessage.user(text, images: imageCount, imagesInText: imageCount > 0 && placeholders > 0)
    }

    /// The prompt ids of `messages` (−200 for each image). Throws `.unsupported` without a template.
    func ids(of messages: [ChatMessage]) throws(LlavaError) -> [Int] {
        guard let template else {
            throw LlavaError(.unsupported, "'\(model.path)' has no chat template this library recognises; name one when loading "
                             + "(LoadOptions.chatTemplate, the CLI's --template) or evaluate raw tokens")
        }
        return try template.encode(messages, with: model.tokenizer).map(Int.init)
    }

    /// The positions `ids` take once the images are in: the text ids, the images already
    /// encoded, and `pending` images from their slicing plans alone (nothing is encoded).
    func positionCount(ids: [Int], encoded: [EncodedImage], pending: [RGBImage]) throws(LlavaError) -> Int {
        var count = ids.filter { $0 != MultimodalInput.imageMarker }.count
            + encoded.reduce(0) { $0 + $1.positionCount(layout: layout) }
        for image in pending { count += try model.plan(for: image, options: slicing).imagePositions(layout: layout) }
        return count
    }

    /// The merged input of `ids` with `images` (one per −200, in order) and its position keys.
    /// Throws `.invalidArgument` when the markers and images disagree or an id is negative.
    func prompt(ids: [Int], images: [EncodedImage]) throws(LlavaError) -> Prompt {
        let input = try MultimodalInput(promptIds: ids, images: images.map(\.projected),
                                        layout: layout, hiddenSize: model.languageConfig.hiddenSize)
        let keys: [PositionKey] = input.elements.map { element in
            switch element {
            case .text(let id): return .token(id)
            case .image(let i, _): return .image(images[i].key, element: element)
            }
        }
        return Prompt(input: input, keys: keys)
    }

    /// How many of `cached` positions a prompt with `keys` can keep: the longest common prefix,
    /// leaving at least the prompt's last position to evaluate (its logits start the answer).
    static func reusablePrefix(cached: [PositionKey], keys: [PositionKey]) -> Int {
        var reused = 0
        while reused < min(cached.count, keys.count - 1), cached[reused] == keys[reused] { reused += 1 }
        return reused
    }
}
