/// An image run through the whole image half of the pipeline: its slicing plan and the
/// projector's tokens for every view, ready to be laid out in the LLM input.
public struct EncodedImage: Sendable {
    /// Identifies the pixels and the slicing options that produced this encoding.
    public let key: ImageKey
    public let plan: SlicePlan
    /// The projector tokens: per view (slices row-major, then the overview) 144 × hidden.
    package let projected: ProjectedImage

    /// Positions this image takes in the LLM input under `layout`.
    public func positionCount(layout: ImageTokenLayout) -> Int {
        layout.positionCount(grid: projected.grid)
    }

    /// Bytes held by the projector tokens.
    public var byteCount: Int { projected.views.reduce(0) { $0 + $1.count * 4 } }
}

/// The content hash of an image together with the slicing options applied to it: two images
/// with the same key encode to the same tokens.
public struct ImageKey: Hashable, Sendable {
    /// SHA-256 of the width, the height and the RGB pixels.
    public let digest: [UInt8]
    public let options: SlicingOptions

    public init(image: RGBImage, options: SlicingOptions) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(image.pixels.count + 16)
        for v in [UInt64(image.width), UInt64(image.height)] {
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
        bytes.append(contentsOf: image.pixels)
        digest = SHA256.digest(bytes)
        self.options = options
    }
}

extension SlicingOptions: Hashable {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(preresizeLongSide)
        hasher.combine(maxSlices)
        hasher.combine(scaleResolution)
        hasher.combine(patchSize)
    }
}
