/// The image half of a LLaVA-UHD model: what config.json says about it, the CLIP tower and
/// the projector. A text-only LLM has none (`LlavaModel.vision` is nil). Immutable.
package struct VisionStack: @unchecked Sendable {
    /// The LLaVA-UHD config.json (projector, token layout, template, CLIP layer).
    package let config: ModelConfig
    /// The CLIP tower's hyper-parameters, inferred from its tensors.
    package let clip: CLIPVisionConfig
    /// The CLIP vision tower.
    package let encoder: CLIPVisionEncoder
    /// The projector: VDIM + Hiwin (LLaVA-UHD v2) or the v1 resampler.
    package let projector: any Projector

    /// Builds the tower and the projector from the directory's safetensors `weights`; `threads`
    /// make the Q8_0 copies for `.int8` (the tower's, and the Hiwin projector's cat_proj and
    /// out_proj: see `ProjectorConfig.makeProjector`).
    init(config: ModelConfig, weights: WeightStore, arithmetic: MatrixArithmetic, threads: Int) throws(LlavaError) {
        self.config = config
        clip = try config.visionConfig(from: weights)
        encoder = try CLIPVisionEncoder(store: weights, prefix: CLIPVisionConfig.checkpointPrefix, config: clip,
                                        arithmetic: arithmetic, threads: threads)
        projector = try config.projector.makeProjector(weights: weights, arithmetic: arithmetic, threads: threads)
    }
}
