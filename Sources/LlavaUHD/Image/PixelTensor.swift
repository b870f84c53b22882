/// A normalised view ready for the ViT: `3 × height × width` float32, channel-major (CHW), as
/// upstream's `CLIPImageProcessor` hands it to the vision tower. `height` and `width` are
/// multiples of the patch size (views are never padded or squared).
package struct PixelTensor: Sendable, Equatable {
    package let width: Int
    package let height: Int
    /// `3 · height · width` values: plane R, then G, then B, each row-major.
    package var values: [Float]

    /// Wraps existing values; throws `.invalidArgument` when the count is not 3·height·width.
    package init(width: Int, height: Int, values: [Float]) throws(LlavaError) {
        guard width >= 1, height >= 1, values.count == 3 * width * height else {
            throw LlavaError(.invalidArgument,
                             "pixel tensor of \(width)x\(height) needs \(3 * max(width, 0) * max(height, 0)) values, got \(values.count)")
        }
        self.width = width
        self.height = height
        self.values = values
    }

    /// For values built with the right count by the library itself.
    init(checkedWidth width: Int, height: Int, values: [Float]) {
        self.width = width
        self.height = height
        self.values = values
    }
}
