extension ImageTokenLayout {
    /// Projector tokens per view (a 12×12 grid of windows).
    package static let tokensPerView = 144
    /// Side of a view's token grid.
    package static let tokenGridSide = 12

    /// The LLM token id upstream embeds, from the LLM's own table, for a slice separator
    /// (docs/MODEL.md §1.2, §5): 29892 (`,` in the LLaMA vocabulary) for a comma and 13 (`<0x0A>`, the
    /// newline byte token) for a newline; Qwen2 checkpoints use the same ids.
    package static func tokenID(of separator: SlicePlan.Separator) -> Int {
        switch separator {
        case .comma: 29892
        case .newline: 13
        }
    }

    /// What one image position of the LLM input holds.
    package enum Slot: Sendable, Hashable {
        /// Token `index` (row-major in the 12×12 grid) of view `view` (slices row-major, then
        /// the overview).
        case token(view: Int, index: Int)
        /// The embedding row of a separator id (13 or 29892) from the LLM's own table.
        case separator(Int)
    }

    /// The image positions of one image, in order (docs/MODEL.md §5.2, §5.3):
    ///
    /// * not sliced (`grid` nil): the 144 overview tokens, in both layouts;
    /// * `.stitchedGrid` (old-vicuna-7b): the slices' tokens stitched into one
    ///   `(rows·12) × (columns·12)` grid, each of its rows followed by `separators[columns−1]`;
    ///   then `separators[0]` (so `\n` rather than `,` for a one-column grid, as upstream);
    ///   then the 144 overview tokens: `rows·12·(columns·12 + 1) + 1 + 144` positions;
    /// * `.perSlice` (LLaVA-UHD-v2 branch): each slice's 144 tokens followed by its separator,
    ///   then the overview: `n·145 + 144` positions.
    ///
    /// Throws `.invalidArgument` for an empty grid or a separator count other than one per slice.
    package func slots(grid: SliceGrid?, separators: [Int]) throws(LlavaError) -> [Slot] {
        let side = Self.tokenGridSide, perView = Self.tokensPerView
        guard let grid else {
            guard separators.isEmpty else {
                throw LlavaError(.invalidArgument, "an image without slices has no separators, but \(separators.count) were given")
            }
            return (0..<perView).map { .token(view: 0, index: $0) }
        }
        guard grid.columns >= 1, grid.rows >= 1 else {
            throw LlavaError(.invalidArgument, "slice grid \(grid.columns)×\(grid.rows) is empty")
        }
        guard separators.count == grid.count else {
            throw LlavaError(.invalidArgument,
                             "a \(grid.columns)×\(grid.rows) slice grid needs \(grid.count) separator ids (one per slice), got \(separators.count)")
        }
        let overview = grid.count
        var slots: [Slot] = []
        slots.reserveCapacity(positionCount(grid: grid))
        switch self {
        case .stitchedGrid:
            let newline = separators[grid.columns - 1]
            for y in 0..<(grid.rows * side) {
                for x in 0..<(grid.columns * side) {
                    let view = (y / side) * grid.columns + x / side
                    slots.append(.token(view: view, index: (y % side) * side + x % side))
                }
                slots.append(.separator(newline))
            }
            slots.append(.separator(separators[0]))
        case .perSlice:
            for s in 0..<grid.count {
                for i in 0..<perView { slots.append(.token(view: s, index: i)) }
                slots.append(.separator(separators[s]))
            }
        }
        for i in 0..<perView { slots.append(.token(view: overview, index: i)) }
        return slots
    }

    /// The number of LLM positions one image takes (see `slots`).
    package func positionCount(grid: SliceGrid?) -> Int {
        let perView = Self.tokensPerView, side = Self.tokenGridSide
        guard let grid else { return perView }
        switch self {
        case .stitchedGrid: return grid.rows * side * (grid.columns * side + 1) + 1 + perView
        case .perSlice: return grid.count * (perView + 1) + perView
        }
    }
}
