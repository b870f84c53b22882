/// The CLIP features of one view: the hidden state of the selected encoder layer (layer −2)
/// at every patch, CLS dropped, before `post_layernorm` (docs/MODEL.md §2).
///
/// Layout: `(rows · columns) × channels` row-major, patch (y, x) at row `y · columns + x`; that
/// is upstream's `(h·w) × C` token order. The 1x pyramid level is its transpose to C×h×w.
package struct PatchFeatures: Sendable, Equatable {
    /// Patch rows h (view height / 14).
    package let rows: Int
    /// Patch columns w (view width / 14).
    package let columns: Int
    /// Feature width C (1024 for ViT-L).
    package let channels: Int
    /// `rows · columns · channels` values.
    package var values: [Float]

    package init(rows: Int, columns: Int, channels: Int, values: [Float]) throws(LlavaError) {
        guard rows >= 1, columns >= 1, channels >= 1, values.count == rows * columns * channels else {
            throw LlavaError(.invalidArgument,
                             "patch features of \(rows)x\(columns)x\(channels) cannot hold \(values.count) values")
        }
        self.rows = rows
        self.columns = columns
        self.channels = channels
        self.values = values
    }

    /// For values built with the right count by the library itself.
    init(checkedRows rows: Int, columns: Int, channels: Int, values: [Float]) {
        self.rows = rows
        self.columns = columns
        self.channels = channels
        self.values = values
    }

    /// Number of patches, h·w.
    package var patchCount: Int { rows * columns }
}
