/// Which projector a checkpoint uses and its sizes (docs/MODEL.md §3, §4, §8).
public struct ProjectorConfig: Sendable, Equatable {
    /// The raw values are the names the C API (`luhd_model_get_properties`) prints.
    public enum Kind: String, Sendable, Equatable {
        /// LLaVA-UHD v2: VDIM pyramid + Hiwin window attention (`adapt_spatial_resampler`,
        /// `adapt_spatial_resampler_v2`).
        case hiwin
        /// LLaVA-UHD v1 resampler (`adapt_spatial_resampler_v1`, `feature_mode: uhd_v1`).
        case uhdV1 = "uhd_v1"
    }

    public var kind: Kind
    /// Pyramid levels as a bit set: 1 = 1x, 2 = 2x, 4 = 4x, 8 = 8x (Hiwin only; 7 or 5 in releases).
    public var featureScaleMask: Int
    /// Vision feature width entering the projector (`mm_hidden_size`, 1024).
    public var visionHiddenSize: Int
    /// Output width = the LLM's hidden size (E).
    public var embedDim: Int
    /// Queries per side of the window grid (12 → 144 tokens per view).
    public var gridSize: Int

    public init(kind: Kind, featureScaleMask: Int, visionHiddenSize: Int, embedDim: Int, gridSize: Int = 12) {
        self.kind = kind
        self.featureScaleMask = featureScaleMask
        self.visionHiddenSize = visionHiddenSize
        self.embedDim = embedDim
        self.gridSize = gridSize
    }

    /// Attention heads of the shared multi-head attention (E / 128).
    public var headCount: Int { embedDim / 128 }
    /// Tokens per view (144).
    public var tokensPerView: Int { gridSize * gridSize }

    /// The pyramid levels the Hiwin projector attends to, in upstream's order (1x first):
    /// scale factors 1, 2, 4 selected by `featureScaleMask`. For the v1 projector, [1].
    public var projectedScales: [Int] {
        kind == .uhdV1 ? [1] : [1, 2, 4].filter { featureScaleMask & $0 != 0 }
    }

    /// The scale of the VDIM stack's top level (4 when bit 4 is set, otherwise 2), which gets
    /// the stack's final 1×1 fix-up; nil for the v1 projector.
    public var vdimTopScale: Int? {
        kind == .uhdV1 ? nil : (featureScaleMask & 4 != 0 ? 4 : 2)
    }

    /// Checks the sizes and the feature mask. Upstream runs only masks with the 1x bit set
    /// (`prepare_single_key_value` reads the 1x level's batch size), an upsampler (bit 2 or 4),
    /// and no 8x bit (`JBU8xStack` has no `forward_with_internal_features`, so the 8x stack
    /// fails at inference). Throws `.unsupported` (8x) or `.badConfig`, as `ModelConfig` does when it
    /// reads config.json.
    public func validate() throws(LlavaError) {
        guard visionHiddenSize > 0 else { throw LlavaError(.badConfig, "mm_hidden_size \(visionHiddenSize) must be positive") }
        guard embedDim >= 128, embedDim % headCount == 0 else {
            throw LlavaError(.badConfig, "hidden_size \(embedDim) cannot be split into hidden_size/128 attention heads")
        }
        guard gridSize > 0 else { throw LlavaError(.badConfig, "window grid size \(gridSize) must be positive") }
        guard kind == .hiwin else { return }
        let m = featureScaleMask
        guard m & ~15 == 0 else { throw LlavaError(.badConfig, "feature_scale_mask \(m) has bits other than 1, 2, 4, 8") }
        guard m & 8 == 0 else {
            throw LlavaError(.unsupported,
                             "feature_scale_mask \(m) selects the 8x VDIM stack, which upstream LLaVA-UHD cannot run at inference (JBU8xStack has no forward_with_internal_features)")
        }
        guard m & 1 != 0 else {
            throw LlavaError(.badConfig, "feature_scale_mask \(m) drops the 1x level, which upstream's Hiwin projector requires")
        }
        guard m & 6 != 0 else {
            throw LlavaError(.badConfig, "feature_scale_mask \(m) selects no VDIM upsampler (bit 2 or 4), which upstream requires")
        }
    }
}
