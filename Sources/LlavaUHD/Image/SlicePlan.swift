#if canImport(Glibc)
import Glibc
#endif

/// A width × height in pixels.
public struct PixelSize: Sendable, Equatable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
    public var description: String { "\(width)x\(height)" }
}

/// The knobs of LLaVA-UHD's image preprocessing (docs/MODEL.md §1.1). The defaults are upstream's
/// evaluation settings (`model_vqa_loader.py`).
public struct SlicingOptions: Sendable, Equatable {
    /// Upscale-only pre-resize target for the long side (`resize_image_keep_ratio`): 1024 for
    /// most benchmarks, 1536 for TextVQA, 0 = off (MME, AI2D).
    public var preresizeLongSide: Int
    /// Largest number of slices (`max_slice_nums`, 9 at inference, 7 in training).
    public var maxSlices: Int
    /// Side of the square area every view is sized to (`scale_resolution`, 336).
    public var scaleResolution: Int
    /// ViT patch side (14); view sides are multiples of it.
    public var patchSize: Int

    public init(preresizeLongSide: Int = 1024, maxSlices: Int = 9, scaleResolution: Int = 336, patchSize: Int = 14) {
        self.preresizeLongSide = preresizeLongSide
        self.maxSlices = maxSlices
        self.scaleResolution = scaleResolution
        self.patchSize = patchSize
    }

    /// Throws `.invalidArgument` for values upstream's arithmetic cannot use.
    public func validate() throws(LlavaError) {
        guard preresizeLongSide >= 0, preresizeLongSide <= 1 << 16 else {
            throw LlavaError(.invalidArgument, "pre-resize long side \(preresizeLongSide) must be in 0...65536 (0 = off)")
        }
        guard maxSlices >= 0, maxSlices <= 64 else {
            throw LlavaError(.invalidArgument, "max slices \(maxSlices) must be in 0...64")
        }
        guard patchSize >= 1, patchSize <= 64 else {
            throw LlavaError(.invalidArgument, "patch size \(patchSize) must be in 1...64")
        }
        guard scaleResolution >= patchSize, scaleResolution <= 4096 else {
            throw LlavaError(.invalidArgument, "scale resolution \(scaleResolution) must be in \(patchSize)...4096")
        }
    }
}

/// How LLaVA-UHD cuts one image into views (docs/MODEL.md §1.1–§1.2): the eval pre-resize
/// (`resize_image_keep_ratio`), then `slice_image_minicpm`: an overview of the whole image
/// with area ≈ scaleResolution², and, for larger images, a grid of equal slices cut from a
/// resize of the (pre-resized) image to `refineSize`. Every view side is a multiple of the
/// patch size.
///
/// The plan is pure arithmetic on sizes; `ViewPreprocessor` produces the pixels.
public struct SlicePlan: Sendable, Equatable {
    /// What upstream puts after a slice (`ind_tokens`). The LLM token ids are not the image
    /// stage's business: `ImageTokenLayout.tokenID(of:)` resolves them.
    public enum Separator: Sendable, Equatable, CaseIterable {
        /// After a slice that is not the last of its row.
        case comma
        /// After the last slice of a row.
        case newline
    }

    /// One view's place: its pixel size and patch grid, and for a slice the rectangle it is
    /// cropped from in the refine-size image.
    public struct View: Sendable, Equatable {
        /// Pixel size (both sides multiples of the patch size).
        public var size: PixelSize
        /// Left and top of the crop in the refine-size image (0, 0 for the overview).
        public var x: Int
        public var y: Int
        /// Patch rows (h = height / patch) and columns (w = width / patch).
        public var patchRows: Int
        public var patchColumns: Int
        /// Whether this is the overview (the last view) rather than a slice.
        public var isOverview: Bool
        /// Number of patches, h·w.
        public var patchCount: Int { patchRows * patchColumns }
    }

    /// The options the plan was made with.
    public let options: SlicingOptions
    /// Size of the input image.
    public let inputSize: PixelSize
    /// Size after the pre-resize (equal to `inputSize` when no resize happens).
    public let resizedSize: PixelSize
    /// The slice grid, or nil when the image is not sliced.
    public let grid: SliceGrid?
    /// Size of the overview.
    public let overviewSize: PixelSize
    /// Size the pre-resized image is resized to before it is cut into slices (nil when not
    /// sliced): `grid.columns · sliceSize.width` × `grid.rows · sliceSize.height`.
    public let refineSize: PixelSize?
    /// Size of every slice (nil when not sliced).
    public let sliceSize: PixelSize?
    /// Upstream's `ind_tokens`: one separator per slice, row-major: a comma after a slice that
    /// is not last in its row, a newline after the last one. Empty when not sliced.
    public let separators: [Separator]

    /// Plans the views of an image of `inputSize`. Throws `.invalidArgument` for an empty size
    /// or invalid options, `.imageTooLarge` when the pre-resize would enlarge the image beyond
    /// both its own size and Pillow's decompression-bomb limit (`ImageLimits.pillowMaxPixels`):
    /// a 1x1 image with `preresizeLongSide` 32768 would otherwise need a 3.2 GB intermediate.
    public init(inputSize: PixelSize, options: SlicingOptions = SlicingOptions()) throws(LlavaError) {
        try options.validate()
        guard inputSize.width >= 1, inputSize.height >= 1, inputSize.width <= 1 << 20, inputSize.height <= 1 << 20 else {
            throw LlavaError(.invalidArgument, "image size \(inputSize) must have both sides in 1...1048576")
        }
        self.options = options
        self.inputSize = inputSize
        let resized = Self.preresizedSize(inputSize, longSide: options.preresizeLongSide)
        // Sides are at most 2^20 (input) and 2^16 (pre-resize): the products cannot overflow.
        let inputPixels = inputSize.width * inputSize.height, resizedPixels = resized.width * resized.height
        guard resizedPixels <= max(inputPixels, ImageLimits.pillowMaxPixels) else {
            throw LlavaError(.imageTooLarge,
                             "pre-resizing the \(inputSize) image to a long side of \(options.preresizeLongSide) gives \(resized) = \(resizedPixels) pixels, more than the limit of \(ImageLimits.pillowMaxPixels)")
        }
        self.resizedSize = resized

        let s = options.scaleResolution, p = options.patchSize
        let w = resized.width, h = resized.height
        let logRatio = log(Double(w) / Double(h))
        let ratio = Double(w * h) / Double(s * s)
        let multiple = min(Int(ratio.rounded(.up)), options.maxSlices)

        guard multiple > 1 else {
            grid = nil
            overviewSize = Self.bestResize(width: w, height: h, scale: s, patch: p, upscale: true)
            refineSize = nil
            sliceSize = nil
            separators = []
            return
        }
        // Candidate slice counts multiple−1, multiple, multiple+1 (minus 1 and anything above
        // the maximum), and for each count n every factorisation [m, n/m], m ascending.
        var best = SliceGrid(columns: 1, rows: 1)
        var minError = Double.infinity
        for n in [multiple - 1, multiple, multiple + 1] where n != 1 && n <= options.maxSlices {
            for m in 1...n where n % m == 0 {
                let error = abs(logRatio - log(Double(m) / Double(n / m)))
                if error < minError {   // strict: the first candidate wins ties
                    best = SliceGrid(columns: m, rows: n / m)
                    minError = error
                }
            }
        }
        grid = best
        overviewSize = Self.bestResize(width: w, height: h, scale: s, patch: p, upscale: false)
        let refineW = Self.ensureDivide(w, best.columns), refineH = Self.ensureDivide(h, best.rows)
        let cell = Self.bestResize(width: refineW / best.columns, height: refineH / best.rows,
                                   scale: s, patch: p, upscale: true)
        sliceSize = cell
        refineSize = PixelSize(width: cell.width * best.columns, height: cell.height * best.rows)
        var kinds: [Separator] = []
        for _ in 0..<best.rows {
            for c in 0..<best.columns { kinds.append(c == best.columns - 1 ? .newline : .comma) }
        }
        separators = kinds
    }

    /// `resize_image_keep_ratio`: the long side becomes `longSide` (the other side scaled and
    /// truncated, computed as int(longSide / long · short) like upstream), but only when the
    /// new width exceeds the old width; otherwise the image keeps its size. 0 = off.
    public static func preresizedSize(_ size: PixelSize, longSide m: Int) -> PixelSize {
        guard m > 0 else { return size }
        let w = size.width, h = size.height
        let newSize: PixelSize
        if w > h {
            newSize = PixelSize(width: m, height: Int(Double(m) / Double(w) * Double(h)))
        } else {
            newSize = PixelSize(width: Int(Double(m) / Double(h) * Double(w)), height: m)
        }
        return newSize.width > w ? newSize : size
    }

    /// `ensure_divide`: `length` floored to a multiple of `q`, at least `q`.
    static func ensureDivide(_ length: Int, _ q: Int) -> Int { max(length / q * q, q) }

    /// `find_best_resize`: when the area exceeds scale² (or `upscale`), a size with area ≈
    /// scale² and the same aspect ratio (height = int(scale/√r), width = int(height·r)); then
    /// both sides floored to multiples of `patch` (at least one patch).
    static func bestResize(width: Int, height: Int, scale: Int, patch: Int, upscale: Bool) -> PixelSize {
        var w = width, h = height
        if width * height > scale * scale || upscale {
            let r = Double(width) / Double(height)
            h = Int(Double(scale) / r.squareRoot())
            w = Int(Double(h) * r)
        }
        return PixelSize(width: ensureDivide(w, patch), height: ensureDivide(h, patch))
    }

    /// Whether the image is cut into slices.
    public var isSliced: Bool { grid != nil }

    /// Number of slices (0 when not sliced).
    public var sliceCount: Int { grid?.count ?? 0 }

    /// Every view in upstream's order: the slices row-major (top row left to right), then the
    /// overview.
    public var views: [View] {
        let p = options.patchSize
        var out: [View] = []
        if let grid, let sliceSize {
            for r in 0..<grid.rows {
                for c in 0..<grid.columns {
                    out.append(View(size: sliceSize, x: c * sliceSize.width, y: r * sliceSize.height,
                                    patchRows: sliceSize.height / p, patchColumns: sliceSize.width / p,
                                    isOverview: false))
                }
            }
        }
        out.append(View(size: overviewSize, x: 0, y: 0, patchRows: overviewSize.height / p,
                        patchColumns: overviewSize.width / p, isOverview: true))
        return out
    }

    /// The separator placed between the stitched slice grid and the overview in the
    /// old-vicuna-7b layout: `separators[0]`, i.e. a comma with more than one column but a
    /// newline with a single column (an upstream quirk). Nil when not sliced.
    public var overviewSeparator: Separator? { separators.first }

    /// The number of LLM positions the image occupies under `layout` (144 tokens per view;
    /// see `ImageTokenLayout.positionCount`).
    public func imagePositions(layout: ImageTokenLayout) -> Int {
        layout.positionCount(grid: grid)
    }
}
