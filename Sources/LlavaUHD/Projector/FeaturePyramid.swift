/// The inverse semantic pyramid of one view: the CLIP features (1x) and VDIM's upsampled
/// levels (docs/MODEL.md §3), each `channels × rows × columns` float32 (CHW, PyTorch's layout).
package struct FeaturePyramid: Sendable {
    package struct Level: Sendable {
        /// 1, 2 or 4: the level's size relative to the patch grid.
        package let scale: Int
        package let rows: Int
        package let columns: Int
        package let channels: Int
        /// `channels · rows · columns` values, channel-major.
        package let values: [Float]
        /// Whether the projector attends to this level (`feature_scale_mask`); a 4x stack
        /// under mask 5 still computes the 2x level it does not use.
        package let usedByProjector: Bool
    }

    /// Levels by increasing scale.
    package let levels: [Level]

    /// The level of `scale`, if the pyramid has it.
    package func level(scale: Int) -> Level? { levels.first { $0.scale == scale } }
}
