import LlavaUHD
import Testing
import TestSupport

/// Image token layouts and the merged input, beyond the upstream cases (which check the
/// positions and values of one image per layout): the position formulas of docs/MODEL.md §5.2/§5.3
/// (worked examples 1033 and 769), several images, and every malformed input.
@Suite struct MultimodalInputTests {
    typealias Grid = SliceGrid

    /// An image whose token t of view v holds the value 1000·v + t in every channel.
    static func image(_ grid: Grid?, separators: [Int], hidden: Int) -> ProjectedImage {
        let views = (0...(grid?.count ?? 0)).map { v in
            (0..<ImageTokenLayout.tokensPerView).flatMap { t in [Float](repeating: Float(1000 * v + t), count: hidden) }
        }
        return ProjectedImage(grid: grid, views: views, separators: separators)
    }

    static func separators(_ grid: Grid) -> [Int] {
        (0..<grid.count).map { ($0 + 1) % grid.columns == 0 ? 13 : 29892 }
    }

    @Test func positionCountsFollowTheSpec() throws {
        #expect(ImageTokenLayout.stitchedGrid.positionCount(grid: Grid(columns: 3, rows: 2)) == 1033)
        #expect(ImageTokenLayout.stitchedGrid.positionCount(grid: Grid(columns: 1, rows: 4)) == 769)
        #expect(ImageTokenLayout.perSlice.positionCount(grid: Grid(columns: 2, rows: 1)) == 434)
        for layout in [ImageTokenLayout.stitchedGrid, .perSlice] {
            #expect(layout.positionCount(grid: nil) == 144)
            #expect(try layout.slots(grid: nil, separators: []).count == 144)
            for (c, r) in [(1, 2), (2, 1), (3, 3), (4, 2), (1, 9)] {
                let g = Grid(columns: c, rows: r)
                let slots = try layout.slots(grid: g, separators: Self.separators(g))
                #expect(slots.count == layout.positionCount(grid: g))
                // Every token of every view appears exactly once.
                var seen = Set<Int>()
                for case .token(let v, let i) in slots { seen.insert(v * 144 + i) }
                #expect(seen.count == (g.count + 1) * 144)
            }
        }
    }

    @Test func stitchedGridInterleavesSliceRows() throws {
        let g = Grid(columns: 2, rows: 1)
        let slots = try ImageTokenLayout.stitchedGrid.slots(grid: g, separators: [29892, 13])
        // First token row: slice 0's row 0, then slice 1's row 0, then the row-end separator.
        #expect(slots[0] == .token(view: 0, index: 0))
        #expect(slots[11] == .token(view: 0, index: 11))
        #expect(slots[12] == .token(view: 1, index: 0))
        #expect(slots[24] == .separator(13))
        #expect(slots[25] == .token(view: 0, index: 12))
        // After the 12 rows: separators[0], then the overview.
        #expect(slots[12 * 25] == .separator(29892))
        #expect(slots[12 * 25 + 1] == .token(view: 2, index: 0))
        // One column: the separator before the overview is the row-end id (upstream quirk).
        let tall = try ImageTokenLayout.stitchedGrid.slots(grid: Grid(columns: 1, rows: 2), separators: [13, 13])
        #expect(tall[24 * 13] == .separator(13))
    }

    @Test func perSliceFollowsEachSliceWithItsSeparator() throws {
        let slots = try ImageTokenLayout.perSlice.slots(grid: Grid(columns: 2, rows: 2), separators: [29892, 13, 29892, 13])
        #expect(slots[144] == .separator(29892))
        #expect(slots[145] == .token(view: 1, index: 0))
        #expect(slots[2 * 145 - 1] == .separator(13))
        #expect(slots[4 * 145] == .token(view: 4, index: 0))
    }

    @Test func mergesSeveralImagesWithTextRows() throws {
        let decoder = try loadHuggingFaceDecoder(Fixtures.root + "/hf/llama")
        let h = decoder.config.hiddenSize
        let a = Self.image(nil, separators: [], hidden: h)
        // The fixture model's vocabulary has 512 ids, so 212 stands in for 29892.
        let b = Self.image(Grid(columns: 2, rows: 1), separators: [212, 13], hidden: h)
        let ids = [1, 5, -200, 7, -200, 9]
        let input = try MultimodalInput(promptIds: ids, images: [a, b], layout: .perSlice, hiddenSize: h)
        #expect(input.count == 4 + 144 + 434)
        #expect(input.elements[2] == .image(image: 0, slot: .token(view: 0, index: 0)))
        #expect(input.elements[146] == .text(7))
        #expect(input.elements[147] == .image(image: 1, slot: .token(view: 0, index: 0)))
        #expect(input.separatorPositions == [147 + 144, 147 + 289])
        let x = try input.embeddings(decoder: decoder)
        #expect(row(x, 1, width: h) == (try decoder.embeddingRow(5)))
        #expect(row(x, 146, width: h) == (try decoder.embeddingRow(7)))
        #expect(row(x, 147 + 144, width: h) == (try decoder.embeddingRow(212)))
        #expect(row(x, 2 + 143, width: h) == [Float](repeating: 143, count: h))
        #expect(row(x, 147 + 145 + 5, width: h) == [Float](repeating: 1005, count: h))
        #expect(row(x, input.count - 1, width: h) == (try decoder.embeddingRow(9)))
    }

    @Test func rejectsMalformedInputs() throws {
        let h = 8
        let good = Self.image(Grid(columns: 2, rows: 1), separators: [29892, 13], hidden: h)
        func status(_ body: () throws -> Void) -> Status? {
            do { try body(); return nil } catch let e as LlavaError { return e.status } catch { return nil }
        }
        // Marker count vs images.
        #expect(status { _ = try MultimodalInput(promptIds: [1, 2], images: [good], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        #expect(status { _ = try MultimodalInput(promptIds: [1, -200, -200], images: [good], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        // Other negative ids.
        #expect(status { _ = try MultimodalInput(promptIds: [-1, -200], images: [good], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        // Views: count, size; separators; grid.
        var fewer = good
        fewer.views.removeLast()
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [fewer], layout: .stitchedGrid, hiddenSize: h) } == .invalidArgument)
        var narrow = good
        narrow.views[1] = [Float](repeating: 0, count: 144 * h - 1)
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [narrow], layout: .stitchedGrid, hiddenSize: h) } == .invalidArgument)
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [good], layout: .stitchedGrid, hiddenSize: h + 1) } == .invalidArgument)
        var seps = good
        seps.separators = [13]
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [seps], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        let unsliced = ProjectedImage(grid: nil, views: [good.views[0]], separators: [13])
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [unsliced], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        let empty = ProjectedImage(grid: Grid(columns: 0, rows: 1), views: [good.views[0]], separators: [])
        #expect(status { _ = try MultimodalInput(promptIds: [-200], images: [empty], layout: .perSlice, hiddenSize: h) } == .invalidArgument)
        // Width and ids checked against the decoder.
        let decoder = try loadHuggingFaceDecoder(Fixtures.root + "/hf/llama")
        let input = try MultimodalInput(promptIds: [-200], images: [good], layout: .perSlice, hiddenSize: h)
        #expect(status { _ = try input.embeddings(decoder: decoder) } == .invalidArgument)
        let big = try MultimodalInput(promptIds: [600], images: [], layout: .perSlice, hiddenSize: decoder.config.hiddenSize)
        #expect(status { _ = try big.embeddings(decoder: decoder) } == .invalidArgument)
    }
}
