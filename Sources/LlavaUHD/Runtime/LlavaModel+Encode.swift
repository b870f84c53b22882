/// The rest of the image half: VDIM pyramids and projector tokens.
extension LlavaModel {
    /// The projector inputs of every view: CLIP features and the pixels they came from.
    func projectorInputs(pixels: [PixelTensor], features: [PatchFeatures]) throws(LlavaError) -> [ProjectorInput] {
        var inputs: [ProjectorInput] = []
        inputs.reserveCapacity(features.count)
        for (p, f) in zip(pixels, features) {
            inputs.append(try ProjectorInput(rows: f.rows, columns: f.columns, channels: f.channels, features: f.values,
                                             pixelHeight: p.height, pixelWidth: p.width, pixels: p.values))
        }
        return inputs
    }

    /// The feature pyramid of every view (1x = the CLIP features; VDIM's levels for Hiwin
    /// checkpoints, only 1x for the v1 projector).
    package func pyramids(of image: RGBImage, options: SlicingOptions = SlicingOptions(),
                         context: ComputeContext) throws(LlavaError) -> (plan: SlicePlan, views: [FeaturePyramid]) {
        let (plan, pixels, features) = try visionFeatures(of: image, options: options, context: context)
        var out: [FeaturePyramid] = []
        for input in try projectorInputs(pixels: pixels, features: features) {
            out.append(try requireVision(for: "VDIM").projector.pyramid(input, context: context))
        }
        return (plan, out)
    }

    /// The projector tokens of every view: 144 × hidden each, slices row-major then the overview.
    public func embed(_ image: RGBImage, options: SlicingOptions = SlicingOptions(),
                      context: ComputeContext) throws(LlavaError) -> (plan: SlicePlan, views: [[Float]]) {
        let (plan, pixels, features) = try visionFeatures(of: image, options: options, context: context)
        return (plan, try requireVision(for: "the projector").projector.project(projectorInputs(pixels: pixels, features: features), context: context))
    }

    /// The image ready for the LLM input (what `embed` computes), telling `onStage` when each
    /// stage starts.
    func encode(_ image: RGBImage, key: ImageKey, options: SlicingOptions, context: ComputeContext,
                onStage: (ImageEncodingStage) -> Void = { _ in }) throws(LlavaError) -> EncodedImage {
        let stack = try requireVision(for: "an image")
        onStage(.preprocessing)
        let (plan, pixels) = try self.pixels(of: image, options: options, context: context)
        onStage(.visionTower)
        let features = try stack.encoder.encode(pixels, context: context)
        onStage(.projector)
        let views = try stack.projector.project(projectorInputs(pixels: pixels, features: features), context: context)
        let projected = ProjectedImage(grid: plan.grid,
                                       views: views, separators: plan.separators.map(ImageTokenLayout.tokenID(of:)))
        return EncodedImage(key: key, plan: plan, projected: projected)
    }
}

/// The stages of encoding one image, in order.
public enum ImageEncodingStage: Sendable, Equatable {
    /// Slicing, Pillow-exact resizes and CLIP normalisation of every view.
    case preprocessing
    /// The CLIP vision tower on every view.
    case visionTower
    /// VDIM and the projector (Hiwin or the v1 resampler).
    case projector
}
