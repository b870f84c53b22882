/// Hyper-parameters of the CLIP vision tower. The release carries no CLIP section in
/// config.json, so they are inferred from tensor shapes (docs/MODEL.md §2).
package struct CLIPVisionConfig: Sendable, Equatable {
    /// Width of the transformer (1024 for ViT-L).
    package var hiddenSize: Int
    /// Number of encoder layers stored in the file (24 for ViT-L).
    package var layerCount: Int
    /// Attention heads (width / 64, the OpenAI CLIP convention).
    package var headCount: Int
    /// MLP width (4096 for ViT-L).
    package var intermediateSize: Int
    /// Patch side in pixels (14).
    package var patchSize: Int
    /// Side of the square image the position table was trained for (336: 24×24 patches).
    package var imageSize: Int
    /// LayerNorm epsilon (1e-5).
    package var layerNormEps: Float
    /// Which hidden state feeds the projector, Python-style (−2: the input of the last layer).
    package var selectLayer: Int

    package init(hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int,
                patchSize: Int = 14, imageSize: Int = 336, layerNormEps: Float = 1e-5, selectLayer: Int = -2) {
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.patchSize = patchSize
        self.imageSize = imageSize
        self.layerNormEps = layerNormEps
        self.selectLayer = selectLayer
    }

    /// Patches per side of the trained grid (24).
    package var gridSide: Int { imageSize / patchSize }
}
