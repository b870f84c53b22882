import LlavaUHD
import TestSupport
import Testing

/// `SlicePlan` against upstream's `resize_image_keep_ratio` + `slice_image_minicpm`
/// (thunlp/LLaVA-UHD, branch old-vicuna-7b, llava/slice_process.py).
@Suite struct SlicePlanTests {
    /// Tests/Fixtures/slice_plans.json: 300 image sizes run through the upstream functions
    /// (pre-resize 1024, max 9 slices, 336, patch 14). Every field must be identical.
    @Test func matchesUpstreamOn300Sizes() throws {
        let json = try Fixtures.json(Fixtures.root + "/slice_plans.json")
        let plans = try #require(json["plans"]?.arrayValue)
        #expect(plans.count == 300)
        var mismatches = 0
        for p in plans {
            let (w, h) = try #require(UpstreamCaseFiles.pair(p["input_size"]))
            let plan = try SlicePlan(inputSize: PixelSize(width: w, height: h))
            let resized = try #require(UpstreamCaseFiles.pair(p["preresized_size"]))
            let overview = try #require(UpstreamCaseFiles.pair(p["overview_size"]))
            let grid = UpstreamCaseFiles.pair(p["grid"])
            let slice = UpstreamCaseFiles.pair(p["slice_size"])
            let ids = try #require(p["ind_tokens"]?.arrayValue).compactMap(\.intValue)
            let ok = plan.resizedSize == PixelSize(width: resized.0, height: resized.1)
                && plan.overviewSize == PixelSize(width: overview.0, height: overview.1)
                && plan.grid.map { ($0.columns, $0.rows) } ?? (0, 0) == grid ?? (0, 0)
                && (plan.grid == nil) == (grid == nil)
                && plan.sliceSize.map { ($0.width, $0.height) } ?? (0, 0) == slice ?? (0, 0)
                && (plan.sliceSize == nil) == (slice == nil)
                && plan.sliceCount == p["n_slices"]?.intValue
                && plan.separators.map(ImageTokenLayout.tokenID(of:)) == ids
            if !ok {
                mismatches += 1
                Issue.record("plan for \(w)x\(h) differs: got \(plan), expected \(p)")
            }
        }
        #expect(mismatches == 0)
    }

    /// The `preprocess` section of every upstream case's manifest.
    @Test(arguments: Fixtures.upstreamCases)
    func matchesManifest(_ caseName: String) throws {
        let m = try UpstreamCaseFiles.manifest(caseName)
        let pre = try #require(m["preprocess"])
        let (w, h) = try #require(UpstreamCaseFiles.pair(m["image"]?["size_wh"]))
        let options = SlicingOptions(preresizeLongSide: pre["preresize_long_side"]?.intValue ?? 0,
                                     maxSlices: try #require(pre["max_slice_nums"]?.intValue),
                                     scaleResolution: try #require(pre["scale_resolution"]?.intValue),
                                     patchSize: try #require(pre["patch_size"]?.intValue))
        let plan = try SlicePlan(inputSize: PixelSize(width: w, height: h), options: options)
        let resized = try #require(UpstreamCaseFiles.pair(pre["preresized_size_wh"]))
        #expect(plan.resizedSize == PixelSize(width: resized.0, height: resized.1))
        let overview = try #require(UpstreamCaseFiles.pair(pre["overview_size_wh"]))
        #expect(plan.overviewSize == PixelSize(width: overview.0, height: overview.1))
        if let grid = UpstreamCaseFiles.pair(pre["grid_cols_rows"]) {
            #expect(plan.grid == SliceGrid(columns: grid.0, rows: grid.1))
            let slice = try #require(UpstreamCaseFiles.pair(pre["slice_size_wh"]))
            #expect(plan.sliceSize == PixelSize(width: slice.0, height: slice.1))
            #expect(plan.refineSize == PixelSize(width: slice.0 * grid.0, height: slice.1 * grid.1))
        } else {
            #expect(plan.grid == nil && plan.sliceSize == nil && plan.refineSize == nil)
        }
        #expect(plan.sliceCount == pre["num_slices"]?.intValue)
        let ids = try #require(pre["ind_tokens"]?.arrayValue).compactMap(\.intValue)
        #expect(plan.separators.map(ImageTokenLayout.tokenID(of:)) == ids)
        let grids = try #require(pre["view_patch_grids_hw"]?.arrayValue).compactMap(UpstreamCaseFiles.pair)
        #expect(plan.views.map { [$0.patchRows, $0.patchColumns] } == grids.map { [$0.0, $0.1] })

        // Image positions for the case's layout, and the separator before the overview.
        let layout = try #require(m["layout"])
        let formula = try #require(layout["image_positions_formula"]?.stringValue)
        let kind: ImageTokenLayout = formula.hasPrefix("n_slices") ? .perSlice : .stitchedGrid
        #expect(plan.imagePositions(layout: kind) == layout["image_positions"]?.intValue)
        if kind == .stitchedGrid, plan.isSliced {
            let sepIDs = try #require(layout["separator_ids"]?.arrayValue).compactMap(\.intValue)
            #expect(plan.overviewSeparator.map(ImageTokenLayout.tokenID(of:)) == sepIDs.last)
        }
    }

    /// docs/MODEL.md §1.4 worked examples (checked there by running the upstream function), and the
    /// single-column quirk: the separator before the overview is then 13, not 29892.
    @Test func workedExamples() throws {
        let a = try SlicePlan(inputSize: PixelSize(width: 1024, height: 768))
        #expect(a.grid == SliceGrid(columns: 3, rows: 2))
        #expect(a.overviewSize == PixelSize(width: 378, height: 280))
        #expect(a.sliceSize == PixelSize(width: 308, height: 350))
        #expect(a.refineSize == PixelSize(width: 924, height: 700))
        #expect(a.separators == [.comma, .comma, .newline, .comma, .comma, .newline])
        #expect(a.overviewSeparator == .comma)
        #expect(a.imagePositions(layout: .stitchedGrid) == 1033)
        #expect(a.imagePositions(layout: .perSlice) == 6 * 145 + 144)
        #expect(a.views.map(\.patchCount) == [550, 550, 550, 550, 550, 550, 540])
        #expect(a.views[4].x == 308 && a.views[4].y == 350)

        let b = try SlicePlan(inputSize: PixelSize(width: 336, height: 1344))
        #expect(b.resizedSize == PixelSize(width: 336, height: 1344))
        #expect(b.grid == SliceGrid(columns: 1, rows: 4))
        #expect(b.overviewSize == PixelSize(width: 168, height: 672))
        #expect(b.sliceSize == PixelSize(width: 336, height: 336))
        #expect(b.separators == [.newline, .newline, .newline, .newline])
        #expect(b.overviewSeparator == .newline)
        #expect(b.imagePositions(layout: .stitchedGrid) == 769)

        let off = SlicingOptions(preresizeLongSide: 0)
        let c = try SlicePlan(inputSize: PixelSize(width: 336, height: 336), options: off)
        #expect(c.grid == nil && c.overviewSize == PixelSize(width: 336, height: 336))
        #expect(c.imagePositions(layout: .stitchedGrid) == 144 && c.imagePositions(layout: .perSlice) == 144)
        #expect(c.views.count == 1 && c.views[0].isOverview)
        let d = try SlicePlan(inputSize: PixelSize(width: 200, height: 100), options: off)
        #expect(d.overviewSize == PixelSize(width: 462, height: 224))
    }

    /// The pre-resize only happens when the new width exceeds the old one (so a narrow image
    /// whose scaled width truncates to its own width stays as it is), and 0 turns it off.
    @Test func preresizeRule() {
        let m = 1024
        #expect(SlicePlan.preresizedSize(PixelSize(width: 600, height: 400), longSide: m) == PixelSize(width: 1024, height: 682))
        #expect(SlicePlan.preresizedSize(PixelSize(width: 400, height: 400), longSide: m) == PixelSize(width: 1024, height: 1024))
        #expect(SlicePlan.preresizedSize(PixelSize(width: 1, height: 600), longSide: m) == PixelSize(width: 1, height: 600))
        #expect(SlicePlan.preresizedSize(PixelSize(width: 13, height: 500), longSide: m) == PixelSize(width: 26, height: 1024))
        #expect(SlicePlan.preresizedSize(PixelSize(width: 2000, height: 10), longSide: m) == PixelSize(width: 2000, height: 10))
        #expect(SlicePlan.preresizedSize(PixelSize(width: 300, height: 200), longSide: 0) == PixelSize(width: 300, height: 200))
    }

    /// The maximum slice count is honoured and bad sizes/options throw.
    @Test func optionsAndErrors() throws {
        let seven = try SlicePlan(inputSize: PixelSize(width: 2000, height: 2000), options: SlicingOptions(maxSlices: 7))
        #expect(seven.sliceCount <= 7)
        let one = try SlicePlan(inputSize: PixelSize(width: 2000, height: 2000), options: SlicingOptions(maxSlices: 1))
        #expect(one.grid == nil)
        #expect(throws: LlavaError.self) { try SlicePlan(inputSize: PixelSize(width: 0, height: 10)) }
        #expect(throws: LlavaError.self) { try SlicePlan(inputSize: PixelSize(width: 10, height: 10), options: SlicingOptions(patchSize: 0)) }
        #expect(throws: LlavaError.self) { try SlicePlan(inputSize: PixelSize(width: 10, height: 10), options: SlicingOptions(preresizeLongSide: -1)) }
    }
}
