import ArgumentParser
import LlavaUHD

/// `llavauhd plan IMAGE`: how an image is sliced, without running any model.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show how an image is sliced: sizes, grid, views, separators, image tokens.",
        discussion: """
            Needs no model. With --model, only the model's config.json is read, to give the \
            image-token count of its layout; without it, the count is given for both layouts.
            """)

    @Argument(help: ArgumentHelp("The image (JPEG or PNG).", valueName: "image"))
    var image: String

    @OptionGroup var slicing: SlicingFlags

    @Option(name: .long, help: ArgumentHelp("A model directory whose token layout to use.", valueName: "dir"))
    var model: String?

    @Flag(name: .long, help: "Print the plan as one JSON object.")
    var json = false

    func run() throws {
        let options = slicing.options
        try options.validate()
        let decoded = try ImageDecoder.decodeFile(image)
        let plan = try SlicePlan(inputSize: PixelSize(width: decoded.width, height: decoded.height), options: options)
        var layouts: [ImageTokenLayout] = ImageTokenLayout.allCases
        if let model {
            layouts = [try ModelConfig(directory: model).imageTokenLayout]
        }
        let tokens = layouts.map { ($0, plan.imagePositions(layout: $0)) }
        Console.out(json ? Self.json(plan, image: image, tokens: tokens) + "\n"
                         : Self.text(plan, image: image, tokens: tokens, modelLayout: model != nil))
    }

    /// The plan for people.
    static func text(_ plan: SlicePlan, image: String, tokens: [(ImageTokenLayout, Int)], modelLayout: Bool) -> String {
        var lines: [String] = []
        lines.append("image: \(image), \(plan.inputSize)")
        let pre = plan.options.preresizeLongSide
        if pre == 0 {
            lines.append("pre-resize: off")
        } else if plan.resizedSize == plan.inputSize {
            lines.append("pre-resize: long side \(pre), upscale only: kept at \(plan.inputSize)")
        } else {
            lines.append("pre-resize: long side \(pre), upscale only: \(plan.inputSize) -> \(plan.resizedSize)")
        }
        lines.append("max slices: \(plan.options.maxSlices)")
        if let grid = plan.grid, let slice = plan.sliceSize, let refine = plan.refineSize {
            lines.append("grid: \(grid.columns)x\(grid.rows) (columns x rows), \(grid.count) slices")
            lines.append("slice size: \(slice)")
            lines.append("refine size: \(refine)")
        } else {
            lines.append("grid: none (not sliced)")
        }
        lines.append("overview size: \(plan.overviewSize)")
        let separatorIDs = plan.separators.map(ImageTokenLayout.tokenID(of:))
        lines.append("separators: " + (separatorIDs.isEmpty ? "none" : separatorIDs.map(String.init).joined(separator: " ")))
        let views = plan.views
        lines.append("views: \(views.count) (slices row-major, then the overview)")
        let columns = plan.grid?.columns ?? 1
        for (i, view) in views.enumerated() {
            let what = view.isOverview
                ? "overview \(view.size)"
                : "slice row \(i / columns + 1) column \(i % columns + 1) \(view.size) at (\(view.x), \(view.y))"
            lines.append("  \(i + 1): \(what), patch grid \(view.patchRows)x\(view.patchColumns) (rows x columns)")
        }
        let counts = tokens.map { layout, count in
            "\(count) (\(modelLayout ? "the model's layout, " : "")\(layout.summary))"
        }
        lines.append("image tokens: " + counts.joined(separator: ", "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// The plan as JSON, with the key names of the upstream fixtures' manifests.
    static func json(_ plan: SlicePlan, image: String, tokens: [(ImageTokenLayout, Int)]) -> String {
        func size(_ s: PixelSize?) -> JSONValue { s.map { .array([.int($0.width), .int($0.height)]) } ?? .null }
        let grid: JSONValue = plan.grid.map { .array([.int($0.columns), .int($0.rows)]) } ?? .null
        return JSONWriter.object([
            ("image", .string(image)),
            ("input_size_wh", size(plan.inputSize)),
            ("preresize_long_side", .int(plan.options.preresizeLongSide)),
            ("preresized_size_wh", size(plan.resizedSize)),
            ("max_slice_nums", .int(plan.options.maxSlices)),
            ("grid_cols_rows", grid),
            ("num_slices", .int(plan.sliceCount)),
            ("slice_size_wh", size(plan.sliceSize)),
            ("refine_size_wh", size(plan.refineSize)),
            ("overview_size_wh", size(plan.overviewSize)),
            ("ind_tokens", .array(plan.separators.map { .int(ImageTokenLayout.tokenID(of: $0)) })),
            ("view_patch_grids_hw", .array(plan.views.map { .array([.int($0.patchRows), .int($0.patchColumns)]) })),
            ("image_tokens", .object(tokens.map { ($0.0.rawValue, .int($0.1)) })),
        ])
    }
}

extension ImageTokenLayout {
    /// The layout and the code it comes from.
    var summary: String {
        switch self {
        case .stitchedGrid: "stitched grid, old-vicuna-7b / LLaVA-UHD-v2 Vicuna-7B"
        case .perSlice: "per slice, LLaVA-UHD-v2 branch"
        }
    }
}
