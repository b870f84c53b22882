import CLlavaUHD

/// VDIM, the visual detail injection module: the stack of JBU stages that turns a view's CLIP
/// features into the inverse semantic pyramid (docs/MODEL.md §3.1, §3.3; upstream `JBU2xStack` /
/// `JBU4xStack.forward_with_internal_features`).
///
/// Stage k upsamples the previous level 2× with the view's normalised pixels, adaptively
/// average-pooled to the new size, as guidance. The 4x stack returns its 2x level as is and
/// its 4x level plus `0.1·fixup_proj(4x)` (Conv1×1 C→C with bias); the 2x stack applies that
/// fix-up to its 2x level. Levels are `[height, width, channels]` here.
struct VDIMPyramid: Sendable {
    /// One upsampled level, `[height, width, channels]`, with the JBU kernels that made it
    /// from the level below (`[height·width, 49]`).
    struct Level {
        let scale: Int
        let height: Int
        let width: Int
        var values: [Float]
        let kernels: [Float]
    }

    let stages: [JBUStage]
    /// The final fix-up, viewed as a `[C, C]` Linear weight, and its bias.
    let fixupWeight: TensorView
    let fixupBias: TensorView
    let channels: Int

    /// The scale of the top level (2 or 4), which gets the fix-up.
    var topScale: Int { 1 << stages.count }

    /// Looks up the stack under `upsampler.upsampler.` for a top level of `topScale` (2 or 4).
    init(checklist: inout WeightChecklist, topScale: Int, channels: Int) {
        let prefix = "upsampler.upsampler."
        stages = (1...(topScale == 4 ? 2 : 1)).map { JBUStage(checklist: &checklist, prefix: prefix + "up\($0).") }
        let w = checklist.tensor(prefix + "fixup_proj.1.weight", shape: [channels, channels, 1, 1])
        fixupWeight = TensorView(name: w.name, dtype: w.dtype, shape: [channels, channels], data: w.data, owner: w.owner)
        fixupBias = checklist.tensor(prefix + "fixup_proj.1.bias", shape: [channels])
        self.channels = channels
    }

    /// Runs every stage on one view. `features` is the 1x level `[rows, columns, C]`,
    /// `pixels` the view's `3 × pixelHeight × pixelWidth` normalised pixels. Returns the 2x
    /// (and 4x) levels; the top one gets the fix-up only when `applyTopFixup` (the Hiwin
    /// projector folds it into its own weights instead). `scratch`: see `JBUStage.upsample`.
    func levels(features: UnsafePointer<Float>, rows: Int, columns: Int,
                pixels: UnsafePointer<Float>, pixelHeight: Int, pixelWidth: Int,
                applyTopFixup: Bool, scratch: JBUScratch? = nil, context: ComputeContext) throws(LlavaError) -> [Level] {
        guard pixelHeight > 0, pixelWidth > 0 else {
            throw LlavaError(.invalidArgument, "VDIM needs the view's pixels as guidance, got a \(pixelHeight)x\(pixelWidth) tensor")
        }
        var result: [Level] = []
        var h = rows, w = columns
        for (index, stage) in stages.enumerated() {
            try context.checkAbort("VDIM")
            let gh = 2 * h, gw = 2 * w
            try JBUStage.checkGuidanceSize(height: gh, width: gw)
            var guidance = [Float](repeating: 0, count: JBUStage.guidanceChannels * gh * gw)
            let kernels = try context.timed("VDIM guidance + JBU kernels",
                                            operations: JBUStage.kernelOperations(pixels: gh * gw)) { () throws(LlavaError) in
                guidance.withUnsafeMutableBufferPointer { g in
                    TorchResample.adaptiveAvgPool(pixels, channels: JBUStage.guidanceChannels, height: pixelHeight,
                                                  width: pixelWidth, outHeight: gh, outWidth: gw, into: g.baseAddress!)
                }
                return try guidance.withUnsafeBufferPointer { (g) throws(LlavaError) in
                    try stage.kernels(guidance: g.baseAddress!, height: gh, width: gw, threads: context.threads)
                }
            }
            let source = result.last
            let up = try context.timed("VDIM JBU upsampling",
                                       operations: JBUStage.upsampleOperations(pixels: gh * gw, channels: channels)) { () throws(LlavaError) in
                if let source {
                    return try source.values.withUnsafeBufferPointer { (s) throws(LlavaError) in
                        try stage.upsample(s.baseAddress!, height: h, width: w, channels: channels, kernels: kernels,
                                           threads: context.threads, scratch: scratch)
                    }
                }
                return try stage.upsample(features, height: h, width: w, channels: channels, kernels: kernels,
                                          threads: context.threads, scratch: scratch)
            }
            result.append(Level(scale: 2 << index, height: gh, width: gw, values: up, kernels: kernels))
            h = gh
            w = gw
        }
        if applyTopFixup {
            try context.checkAbort("VDIM")
            applyFixup(&result[result.count - 1], context: context)
        }
        return result
    }

    /// `F ← F + 0.1·(F·Wᵀ + b)` on every pixel of `level`.
    func applyFixup(_ level: inout Level, context: ComputeContext) {
        let pixels = level.height * level.width
        var projected = [Float](repeating: 0, count: pixels * channels)
        level.values.withUnsafeBufferPointer { f in
            projected.withUnsafeMutableBufferPointer { p in
                MatMul.linear(f.baseAddress!, rows: pixels, weight: fixupWeight, into: p.baseAddress!, context: context)
            }
        }
        let bias = fixupBias.floats()
        let c = channels
        level.values.withUnsafeMutableBufferPointer { v in
            projected.withUnsafeBufferPointer { p in
                bias.withUnsafeBufferPointer { b in
                    let vp = SendablePointer(v.baseAddress!)
                    let pp = SendablePointer(UnsafeMutablePointer(mutating: p.baseAddress!))
                    let bp = SendablePointer(UnsafeMutablePointer(mutating: b.baseAddress!))
                    let parts = chunks(pixels, parts: context.threads)
                    parallelFor(parts.count, threads: context.threads) { part in
                        luhd_proj_add_scaled_rows(vp.p, pp.p, bp.p, c, 0.1, parts[part].lowerBound, parts[part].upperBound)
                    }
                }
            }
        }
    }
}
