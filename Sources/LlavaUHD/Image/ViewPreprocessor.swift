/// Turns a decoded image into the views the vision tower sees (docs/MODEL.md §1), exactly as upstream's
/// eval loader does: pre-resize (`resize_image_keep_ratio`), overview and slices
/// (`slice_image_minicpm`, every resize Pillow BICUBIC), then CLIP normalisation.
///
/// Views are ordered as upstream orders them: slices row-major, then the overview.
package struct ViewPreprocessor: Sendable {
    package var options: SlicingOptions
    package var normalization: CLIPNormalization
    /// Which Pillow release's resize pass order to reproduce.
    package var passOrder: PillowResample.PassOrder

    package init(options: SlicingOptions = SlicingOptions(), normalization: CLIPNormalization = .openAI,
                passOrder: PillowResample.PassOrder = PillowResample.defaultPassOrder) {
        self.options = options
        self.normalization = normalization
        self.passOrder = passOrder
    }

    /// The slicing plan of an image of this size.
    package func plan(for image: RGBImage) throws(LlavaError) -> SlicePlan {
        try SlicePlan(inputSize: PixelSize(width: image.width, height: image.height), options: options)
    }

    /// The RGB8 views of `image` under `plan` (which must have been made for its size): the
    /// slices, cropped row-major from the image resized to `plan.refineSize`, then the overview.
    /// Both are resized from the pre-resized image.
    package func views(of image: RGBImage, plan: SlicePlan, threads: Int = 1) throws(LlavaError) -> [RGBImage] {
        guard plan.inputSize == PixelSize(width: image.width, height: image.height) else {
            throw LlavaError(.invalidArgument, "slice plan was made for a \(plan.inputSize) image, not \(image.width)x\(image.height)")
        }
        let resized = try PillowResample.bicubic(image, to: plan.resizedSize, threads: threads, order: passOrder)
        var views: [RGBImage] = []
        if let grid = plan.grid, let refineSize = plan.refineSize, let sliceSize = plan.sliceSize {
            let refine = try PillowResample.bicubic(resized, to: refineSize, threads: threads, order: passOrder)
            views.reserveCapacity(grid.count + 1)
            for view in plan.views where !view.isOverview {
                views.append(refine.cropped(x: view.x, y: view.y, width: sliceSize.width, height: sliceSize.height))
            }
        }
        views.append(try PillowResample.bicubic(resized, to: plan.overviewSize, threads: threads, order: passOrder))
        return views
    }

    /// The plan and the normalised views (CHW float32) of `image`.
    package func pixels(of image: RGBImage, threads: Int = 1) throws(LlavaError) -> (plan: SlicePlan, views: [PixelTensor]) {
        let plan = try plan(for: image)
        let rgb = try views(of: image, plan: plan, threads: threads)
        return (plan, rgb.map { normalization.normalize($0) })
    }
}
