/// Which projector a checkpoint uses and its sizes (SPEC §3, §4, §8).
public struct ProjectorConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// LLaVA-UHD v2: VDIM pyramid + Hiwin window attention (`adapt_spatial_resampler`,
        /// `adapt_spatial_resampler_v2`).
        case hiwin
        /// LLaVA-UHD v1 resampler (`adapt_spatial_resampler_v1`, `feature_mode: uhd_v1`).
        case uhdV1
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
}
