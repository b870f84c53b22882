/// What the projector needs of one view (a slice or the overview).
package struct ProjectorInput: Sendable {
    /// Patch rows h and columns w of the view's CLIP feature grid.
    package let rows: Int
    package let columns: Int
    /// Feature width C.
    package let channels: Int
    /// CLIP layer −2 features without CLS: `(rows·columns) × channels`, row-major, patch
    /// (y, x) at row `y·columns + x`.
    package let features: [Float]
    /// Size of the view's pixel tensor (14·rows × 14·columns for CLIP-L/14).
    package let pixelHeight: Int
    package let pixelWidth: Int
    /// The CLIP-normalised pixels that went into the ViT, `3 × pixelHeight × pixelWidth` CHW
    /// (VDIM's guidance). The v1 projector does not read them (they may be empty there).
    package let pixels: [Float]

    /// Throws `.invalidArgument` when a size is not positive or an array's count does not
    /// match its sizes.
    package init(rows: Int, columns: Int, channels: Int, features: [Float],
                pixelHeight: Int, pixelWidth: Int, pixels: [Float]) throws(LlavaError) {
        guard rows > 0, columns > 0, channels > 0 else {
            throw LlavaError(.invalidArgument, "projector input: feature grid \(rows)x\(columns)x\(channels) must be positive")
        }
        guard features.count == rows * columns * channels else {
            throw LlavaError(.invalidArgument,
                             "projector input: \(rows)x\(columns)x\(channels) features need \(rows * columns * channels) values, got \(features.count)")
        }
        guard pixelHeight >= 0, pixelWidth >= 0, pixels.count == 3 * pixelHeight * pixelWidth else {
            throw LlavaError(.invalidArgument,
                             "projector input: 3x\(pixelHeight)x\(pixelWidth) pixels cannot hold \(pixels.count) values")
        }
        self.rows = rows
        self.columns = columns
        self.channels = channels
        self.features = features
        self.pixelHeight = pixelHeight
        self.pixelWidth = pixelWidth
        self.pixels = pixels
    }
}
