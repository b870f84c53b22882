/// One image's projector output, with what the token layout needs to place it.
package struct ProjectedImage: Sendable {
    /// The slice grid; nil when the image was not sliced (the overview is its only view).
    package var grid: SliceGrid?
    /// Per view `ImageTokenLayout.tokensPerView × E` float32 (12×12 row-major): the slices
    /// row-major, then the overview.
    package var views: [[Float]]
    /// The separator id after each slice (upstream `ind_tokens`: 29892 after a slice that is
    /// not last in its row, 13 after the last); empty when not sliced.
    package var separators: [Int]

    package init(grid: SliceGrid?, views: [[Float]], separators: [Int]) {
        self.grid = grid
        self.views = views
        self.separators = separators
    }
}
