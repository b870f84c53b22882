/// The LLM input of a prompt with images: prompt ids with the image marker −200 where each
/// image goes (upstream `tokenizer_image_token`), the images' projector tokens placed by an
/// `ImageTokenLayout`, and the separators and text taken from the LLM's embedding table.
///
/// The i-th marker is replaced by the positions of `images[i]` (`ImageTokenLayout.slots`).
/// `embeddings(decoder:)` materialises the `[count × hidden]` sequence that `TransformerDecoder.eval`
/// takes.
package struct MultimodalInput: Sendable {
    /// Upstream's `IMAGE_TOKEN_INDEX` as an `Int` (defined once, as `ChatTemplate.imageTokenId`).
    package static let imageMarker = Int(ChatTemplate.imageTokenId)

    /// What one position of the merged sequence holds.
    package enum Element: Sendable, Hashable {
        /// A prompt token.
        case text(Int)
        /// A position of image `image` (index into `images`).
        case image(image: Int, slot: ImageTokenLayout.Slot)
    }

    package let elements: [Element]
    package let images: [ProjectedImage]
    /// E: the width of every projector token (the LLM's hidden size).
    package let hiddenSize: Int

    /// Merges `promptIds` and `images` by `layout`. Throws `.invalidArgument` when the number of
    /// −200 markers differs from the number of images, a prompt id is another negative number,
    /// an image's view count is not (slices + 1) or a view is not 144 × `hiddenSize` floats, or
    /// its grid and separators disagree.
    package init(promptIds: [Int], images: [ProjectedImage], layout: ImageTokenLayout, hiddenSize: Int) throws(LlavaError) {
        guard hiddenSize > 0 else { throw LlavaError(.invalidArgument, "hidden size \(hiddenSize) must be positive") }
        let markers = promptIds.reduce(0) { $0 + ($1 == Self.imageMarker ? 1 : 0) }
        guard markers == images.count else {
            throw LlavaError(.invalidArgument,
                             "the prompt has \(markers) image marker(s) (id −200, from <image>) but \(images.count) image(s) were given")
        }
        if let bad = promptIds.firstIndex(where: { $0 < 0 && $0 != Self.imageMarker }) {
            throw LlavaError(.invalidArgument, "prompt id \(promptIds[bad]) at index \(bad) is negative; only −200 marks an image")
        }
        let viewFloats = ImageTokenLayout.tokensPerView * hiddenSize
        var imageSlots: [[ImageTokenLayout.Slot]] = []
        for (i, image) in images.enumerated() {
            let expectedViews = (image.grid?.count ?? 0) + 1
            guard image.views.count == expectedViews else {
                let shape = image.grid.map { "a \($0.columns)×\($0.rows) grid" } ?? "no slices"
                throw LlavaError(.invalidArgument,
                                 "image \(i) has \(shape), so \(expectedViews) view(s) (slices then the overview), but \(image.views.count) were given")
            }
            if let v = image.views.firstIndex(where: { $0.count != viewFloats }) {
                throw LlavaError(.invalidArgument,
                                 "view \(v) of image \(i) holds \(image.views[v].count) floats; expected 144 tokens × \(hiddenSize) = \(viewFloats)")
            }
            do {
                imageSlots.append(try layout.slots(grid: image.grid, separators: image.separators))
            } catch {
                throw LlavaError(error.status, "image \(i): \(error.message)")
            }
        }
        var elements: [Element] = []
        elements.reserveCapacity(promptIds.count + imageSlots.reduce(0) { $0 + $1.count })
        var next = 0
        for id in promptIds {
            if id == Self.imageMarker {
                elements += imageSlots[next].map { .image(image: next, slot: $0) }
                next += 1
            } else {
                elements.append(.text(id))
            }
        }
        self.elements = elements
        self.images = images
        self.hiddenSize = hiddenSize
    }

    /// Positions in the merged sequence.
    package var count: Int { elements.count }

    /// Positions holding a separator embedding, in order.
    package var separatorPositions: [Int] {
        elements.indices.filter {
            if case .image(_, .separator) = elements[$0] { return true }
            return false
        }
    }

    /// The ids at `separatorPositions`.
    package var separatorIds: [Int] {
        elements.compactMap {
            if case .image(_, .separator(let id)) = $0 { return id }
            return nil
        }
    }

    /// The merged `[count × hidden]` input embeddings: text and separator rows from the
    /// decoder's `embed_tokens`, image rows from the projector tokens. Throws
    /// `.invalidArgument` when the decoder's hidden size is not the images' width or an id
    /// is outside its vocabulary.
    package func embeddings(decoder: TransformerDecoder) throws(LlavaError) -> [Float] {
        let h = hiddenSize
        guard decoder.config.hiddenSize == h else {
            throw LlavaError(.invalidArgument,
                             "the image tokens are \(h) wide but the language model's hidden size is \(decoder.config.hiddenSize)")
        }
        var out = [Float](repeating: 0, count: elements.count * h)
        try out.withUnsafeMutableBufferPointer { (buffer) throws(LlavaError) in
            guard let base = buffer.baseAddress else { return }
            for (position, element) in elements.enumerated() {
                let row = base + position * h
                switch element {
                case .text(let id), .image(_, .separator(let id)):
                    try decoder.embed(token: id, into: row)
                case .image(let image, .token(let view, let index)):
                    images[image].views[view].withUnsafeBufferPointer { v in
                        row.update(from: v.baseAddress! + index * h, count: h)
                    }
                }
            }
        }
        return out
    }
}
