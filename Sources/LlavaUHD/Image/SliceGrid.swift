/// The slice grid of an image: `columns × rows` slices, row-major (UHD's adaptive partition).
/// Used by the slicing plan and by the image-token layout.
public struct SliceGrid: Sendable, Equatable {
    public var columns: Int
    public var rows: Int

    public init(columns: Int, rows: Int) {
        self.columns = columns
        self.rows = rows
    }

    /// Number of slices.
    public var count: Int { columns * rows }
}
