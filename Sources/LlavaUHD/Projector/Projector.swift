/// The stage between the vision encoder and the LLM: it turns each view's CLIP features into
/// `tokensPerView` (144) embeddings of the LLM's width E. One implementation per projector
/// family, chosen once from the checkpoint's config (`ProjectorConfig.makeProjector`).
///
/// Implementations are immutable after loading and may be used from several threads at once.
package protocol Projector: AnyObject, Sendable {
    var config: ProjectorConfig { get }

    /// The feature pyramid of one view as the projector builds it (the v1 projector has only
    /// the 1x level). Throws `.invalidArgument` for inputs of the wrong width or too small for
    /// VDIM, `.cancelled` when the context's abort callback fires.
    func pyramid(_ view: ProjectorInput, context: ComputeContext) throws(LlavaError) -> FeaturePyramid

    /// The image tokens of every view, in the given order: per view `tokensPerView × E`
    /// float32, row-major in 12×12 window order. Views are independent (the result for a view
    /// does not depend on the others); batching them only shares work.
    func project(_ views: [ProjectorInput], context: ComputeContext) throws(LlavaError) -> [[Float]]
}

extension ProjectorConfig {
    /// Builds the projector this config names from the checkpoint's tensors under
    /// `model.mm_projector.` (VDIM's under `model.mm_projector.upsampler.upsampler.`; the
    /// unused `upsampler.model.*` tensors are ignored). Every tensor it will use is checked
    /// now; a missing or mis-shaped one throws `.missingTensor` / `.tensorMismatch` naming all
    /// of them. Loads OpenBLAS if needed (`.io` if it cannot). With `arithmetic == .int8` the
    /// Hiwin projector's attention value heads and out_proj, cat_proj and proj run in int8
    /// against Q8_0 copies made now with `threads` (`Int8Product`; `quantKernel` as for
    /// `CLIPVisionEncoder`); the rest (VDIM, the level projections, whose input, the raw CLIP
    /// features, has outlier channels that int8 blocks of 32 render poorly, key-space queries,
    /// attention scores and mixing), and the v1 projector, stay float32.
    package func makeProjector(weights: WeightStore, arithmetic: MatrixArithmetic = .float32,
                               quantKernel: QuantKernel? = nil, threads: Int = 1) throws(LlavaError) -> any Projector {
        try validate()
        try BLAS.load()
        switch kind {
        case .hiwin: return try HiwinProjector(config: self, weights: weights, arithmetic: arithmetic,
                                               quantKernel: quantKernel, threads: threads)
        case .uhdV1: return try UHDV1Projector(config: self, weights: weights)
        }
    }

    /// Prefix of the projector's tensor names in a LLaVA checkpoint.
    static let tensorPrefix = "model.mm_projector."
}
