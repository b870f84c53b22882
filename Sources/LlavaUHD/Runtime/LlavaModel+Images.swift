/// The image half of the pipeline, stage by stage: image → `SlicePlan` → views (RGB8) →
/// normalised pixels (3×H×W) → CLIP features ((h·w)×C) → … Each call starts from the image,
/// so callers that want several stages should call the last one they need. A text-only LLM has
/// no image half: every stage throws `.unsupported`.
extension LlavaModel {
    /// The slicing plan of an image: grid, view sizes, separators (docs/MODEL.md §1).
    public func plan(for image: RGBImage, options: SlicingOptions = SlicingOptions()) throws(LlavaError) -> SlicePlan {
        _ = try requireVision(for: "slicing an image")
        return try ViewPreprocessor(options: options).plan(for: image)
    }

    /// The CLIP-normalised pixels of every view: slices row-major, then the overview.
    package func pixels(of image: RGBImage, options: SlicingOptions = SlicingOptions(),
                       context: ComputeContext) throws(LlavaError) -> (plan: SlicePlan, views: [PixelTensor]) {
        _ = try requireVision(for: "image preprocessing")
        try context.checkAbort("image preprocessing")
        return try ViewPreprocessor(options: options).pixels(of: image, threads: context.threads)
    }

    /// The CLIP layer −2 patch features of every view, with the pixels they came from.
    package func visionFeatures(of image: RGBImage, options: SlicingOptions = SlicingOptions(),
                               context: ComputeContext) throws(LlavaError)
        -> (plan: SlicePlan, pixels: [PixelTensor], features: [PatchFeatures]) {
        let (plan, pixels) = try self.pixels(of: image, options: options, context: context)
        return (plan, pixels, try requireVision(for: "the vision tower").encoder.encode(pixels, context: context))
    }
}
