import LlavaUHD
import TestSupport
import Testing

/// `llavauhd plan` against the upstream fixtures' manifests (the slicing upstream computed for
/// each case, and the image positions of its merged LLM input).
@Suite struct PlanCommandTests {
    static func slicingArguments(_ manifest: JSONValue) -> [String] {
        let pre = manifest["preprocess"]
        return ["--preresize", String(pre?["preresize_long_side"]?.intValue ?? 0),
                "--max-slices", String(pre?["max_slice_nums"]?.intValue ?? 9)]
    }

    @Test(arguments: Fixtures.upstreamCases)
    func jsonPlanEqualsUpstream(_ name: String) throws {
        let scratch = try TemporaryDirectory()
        let manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let image = Fixtures.upstream(name) + "/input.png"
        let result = try CLI.run(["plan", "--json", image, "--model", Fixtures.model(name)] + Self.slicingArguments(manifest),
                                 scratch: scratch)
        try #require(result.exitCode == 0, "\(result)")
        let plan = try JSONValue.parse(result.stdout)
        let pre = try #require(manifest["preprocess"])
        #expect(plan["input_size_wh"] == manifest["image"]?["size_wh"])
        for key in ["preresized_size_wh", "grid_cols_rows", "num_slices", "slice_size_wh", "overview_size_wh",
                    "ind_tokens", "view_patch_grids_hw", "max_slice_nums"] {
            #expect(plan[key] == pre[key], "\(name): \(key): \(plan[key].map { "\($0)" } ?? "missing") vs \(pre[key].map { "\($0)" } ?? "missing")")
        }
        // With --model: the count of the model's layout only, equal to upstream's.
        let tokens = try #require(plan["image_tokens"]?.objectValue)
        #expect(tokens.count == 1)
        #expect(tokens.first?.1 == manifest["layout"]?["image_positions"])
    }

    @Test func textPlanShowsTheUpstreamValues() throws {
        let scratch = try TemporaryDirectory()
        let name = "coffee-v2-mask7"
        let manifest = try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")
        let pre = try #require(manifest["preprocess"])
        let image = Fixtures.upstream(name) + "/input.png"
        let result = try CLI.run(["plan", image] + Self.slicingArguments(manifest), scratch: scratch)
        try #require(result.exitCode == 0, "\(result)")
        func size(_ v: JSONValue?) -> String {
            let a = v?.arrayValue?.compactMap(\.intValue) ?? []
            return a.map(String.init).joined(separator: "x")
        }
        let separators = (pre["ind_tokens"]?.arrayValue ?? []).compactMap(\.intValue).map(String.init).joined(separator: " ")
        let shown = lines(result.stdout)
        let expected = [
            "image: \(image), \(size(manifest["image"]?["size_wh"]))",
            "pre-resize: long side \(pre["preresize_long_side"]?.intValue ?? 0), upscale only: "
                + "\(size(manifest["image"]?["size_wh"])) -> \(size(pre["preresized_size_wh"]))",
            "grid: \(size(pre["grid_cols_rows"])) (columns x rows), \(pre["num_slices"]?.intValue ?? 0) slices",
            "slice size: \(size(pre["slice_size_wh"]))",
            "overview size: \(size(pre["overview_size_wh"]))",
            "separators: \(separators)",
            "views: \(pre["view_patch_grids_hw"]?.arrayValue?.count ?? 0) (slices row-major, then the overview)",
        ]
        for line in expected { #expect(shown.contains(line), "missing line: \(line)\n\(result.stdout)") }
        // Without --model both layouts are counted; the case's own (stitched grid) is upstream's.
        let positions = try #require(manifest["layout"]?["image_positions"]?.intValue)
        #expect(shown.last?.hasPrefix("image tokens: \(positions) (stitched grid") == true, "\(shown.last ?? "")")
        // The per-view lines carry the manifest's patch grids.
        let grids = (pre["view_patch_grids_hw"]?.arrayValue ?? []).map { size($0) }
        for (i, grid) in grids.enumerated() {
            #expect(shown.contains { $0.hasPrefix("  \(i + 1): ") && $0.hasSuffix("patch grid \(grid) (rows x columns)") })
        }
    }
}
