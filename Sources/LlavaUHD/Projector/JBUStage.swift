#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD

/// One stage of VDIM: FeatUp's joint bilateral upsampler with a learned range kernel
/// (`JBULearnedRange(guidance_dim 3, key_dim 32, radius 3)` in upstream `featup/upsamplers.py`),
/// which upsamples a feature map 2× guided by the view's pixels (docs/MODEL.md §3.2).
///
/// For a source `S` (h × w × C) and guidance `G` (3 × 2h × 2w, the pooled CLIP-normalised
/// pixels), every output pixel p gets a 7×7 kernel over its reflect-padded neighbourhood:
/// 1. `E = range_proj(G)`: Conv1×1 3→32, GELU (erf), Conv1×1 32→32;
/// 2. range kernel `softmax_t(τ·⟨E[p + t], E[p]⟩)` over the 49 offsets t (E reflect-padded by
///    3), τ = clamp(exp(range_temp), 1e-4, 1e4);
/// 3. times the spatial kernel `exp(−(t_i² + t_j²) / (2σ²))`, t = linspace(−1, 1, 7),
///    σ = sigma_spatial, then divided by its sum over the 49 offsets (clamped ≥ 1e-7);
/// 4. `K += 0.1·fixup_proj([K, G])` (Conv1×1 52→49, GELU, Conv1×1 49→49), not renormalised;
/// 5. the output is the adaptive convolution of `bicubic(S, 2h × 2w)`, reflect-padded by 3,
///    with K (the same kernel for every channel).
/// Maps are `[height, width, channels]` here; guidance is CHW.
struct JBUStage: Sendable {
    static let radius = 3
    static let diameter = 7
    static let taps = 49
    static let keyDim = 32
    static let guidanceChannels = 3

    let rangeTemp: TensorView
    let sigmaSpatial: TensorView
    let rangeWeight1: TensorView, rangeBias1: TensorView
    let rangeWeight2: TensorView, rangeBias2: TensorView
    let fixupWeight1: TensorView, fixupBias1: TensorView
    let fixupWeight2: TensorView, fixupBias2: TensorView

    /// Looks the stage's tensors up under `prefix` (e.g. `upsampler.upsampler.up1.`).
    init(checklist: inout WeightChecklist, prefix: String) {
        let k = Self.keyDim, t = Self.taps, g = Self.guidanceChannels
        rangeTemp = checklist.tensor(prefix + "range_temp", shape: [])
        sigmaSpatial = checklist.tensor(prefix + "sigma_spatial", shape: [])
        rangeWeight1 = checklist.tensor(prefix + "range_proj.0.weight", shape: [k, g, 1, 1])
        rangeBias1 = checklist.tensor(prefix + "range_proj.0.bias", shape: [k])
        rangeWeight2 = checklist.tensor(prefix + "range_proj.3.weight", shape: [k, k, 1, 1])
        rangeBias2 = checklist.tensor(prefix + "range_proj.3.bias", shape: [k])
        fixupWeight1 = checklist.tensor(prefix + "fixup_proj.0.weight", shape: [t, t + g, 1, 1])
        fixupBias1 = checklist.tensor(prefix + "fixup_proj.0.bias", shape: [t])
        fixupWeight2 = checklist.tensor(prefix + "fixup_proj.3.weight", shape: [t, t, 1, 1])
        fixupBias2 = checklist.tensor(prefix + "fixup_proj.3.bias", shape: [t])
    }

    /// `clamp(exp(range_temp), 1e-4, 1e4)`.
    var temperature: Float { min(max(expf(rangeTemp.float(at: 0)), 1e-4), 1e4) }

    /// The spatial kernel over the 49 offsets, index 7·i + j (i = row offset).
    var spatialKernel: [Float] {
        let sigma = sigmaSpatial.float(at: 0)
        let denominator = 2 * sigma * sigma
        let t = Self.linspace(-1, 1, Self.diameter)
        var k = [Float](repeating: 0, count: Self.taps)
        for i in 0..<Self.diameter {
            for j in 0..<Self.diameter { k[i * Self.diameter + j] = expf(-(t[i] * t[i] + t[j] * t[j]) / denominator) }
        }
        return k
    }

    /// `torch.linspace(start, end, steps)` in float32 (the first half counts up from start,
    /// the second half down from end).
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        let step = (end - start) / Float(steps - 1)
        return (0..<steps).map { i in i < steps / 2 ? start + Float(i) * step : end - Float(steps - 1 - i) * step }
    }

    /// Multiply-adds × 2 of `kernels` for `pixels` guidance pixels: the four 1×1 convolutions
    /// and the 49 range dot products of 32 (the exponentials not counted).
    static func kernelOperations(pixels: Int) -> Double {
        2.0 * Double(pixels * (guidanceChannels * keyDim + keyDim * keyDim + taps * keyDim
                               + (taps + guidanceChannels) * taps + taps * taps))
    }

    /// Multiply-adds × 2 of `upsample` to `pixels` output pixels of `channels` values: 16
    /// bicubic taps and the 49-tap adaptive convolution per value.
    static func upsampleOperations(pixels: Int, channels: Int) -> Double {
        2.0 * Double(pixels * channels * (16 + taps))
    }

    /// The guidance is too small for reflect padding by 3 unless both sides are ≥ 4.
    static func checkGuidanceSize(height: Int, width: Int) throws(LlavaError) {
        guard height > radius, width > radius else {
            throw LlavaError(.invalidArgument,
                             "VDIM needs guidance of at least \(radius + 1)x\(radius + 1) for its reflect padding, got \(height)x\(width) (upstream fails on such a view too)")
        }
    }

    /// The 49-tap kernel of every guidance pixel, `[height·width, 49]` (steps 1–4).
    /// `guidance` is `3 × height × width`.
    func kernels(guidance: UnsafePointer<Float>, height: Int, width: Int, threads: Int) throws(LlavaError) -> [Float] {
        try Self.checkGuidanceSize(height: height, width: width)
        let pixels = height * width
        let taps = Self.taps, g = Self.guidanceChannels

        // Guidance as pixel rows [pixels, 3], then E = range_proj(G): [pixels, 32].
        var guide = [Float](repeating: 0, count: pixels * g)
        for c in 0..<g { for p in 0..<pixels { guide[p * g + c] = guidance[c * pixels + p] } }
        var hidden = Self.conv1x1(guide, pixels: pixels, weight: rangeWeight1, bias: rangeBias1, threads: threads)
        hidden.withUnsafeMutableBufferPointer { Activation.geluErf($0.baseAddress!, count: $0.count, threads: threads) }
        let keys = Self.conv1x1(hidden, pixels: pixels, weight: rangeWeight2, bias: rangeBias2, threads: threads)

        // Range kernel × spatial kernel, normalised.
        var kernel = [Float](repeating: 0, count: pixels * taps)
        let tau = temperature, spatial = spatialKernel
        let rowOf = AdaptiveConvolution.reflectedIndices(size: height, radius: Self.radius)
        let colOf = AdaptiveConvolution.reflectedIndices(size: width, radius: Self.radius)
        keys.withUnsafeBufferPointer { kb in
            kernel.withUnsafeMutableBufferPointer { outBuf in
                rowOf.withUnsafeBufferPointer { rb in
                    colOf.withUnsafeBufferPointer { cb in
                        spatial.withUnsafeBufferPointer { sb in
                            let e = SendablePointer(UnsafeMutablePointer(mutating: kb.baseAddress!))
                            let o = SendablePointer(outBuf.baseAddress!)
                            let r = SendablePointer(UnsafeMutablePointer(mutating: rb.baseAddress!))
                            let c = SendablePointer(UnsafeMutablePointer(mutating: cb.baseAddress!))
                            let sp = SendablePointer(UnsafeMutablePointer(mutating: sb.baseAddress!))
                            let parts = chunks(height, parts: pixels < 1024 ? 1 : threads * 4)
                            parallelFor(parts.count, threads: threads) { part in
                                luhd_proj_range_kernel_rows(e.p, width, Self.diameter, r.p, c.p, tau, sp.p,
                                                            parts[part].lowerBound, parts[part].upperBound, o.p)
                            }
                        }
                    }
                }
            }
        }

        // Fix-up: K += 0.1 · fixup_proj([K, G]).
        var joined = [Float](repeating: 0, count: pixels * (taps + g))
        for p in 0..<pixels {
            for t in 0..<taps { joined[p * (taps + g) + t] = kernel[p * taps + t] }
            for c in 0..<g { joined[p * (taps + g) + taps + c] = guide[p * g + c] }
        }
        var fix = Self.conv1x1(joined, pixels: pixels, weight: fixupWeight1, bias: fixupBias1, threads: threads)
        fix.withUnsafeMutableBufferPointer { Activation.geluErf($0.baseAddress!, count: $0.count, threads: threads) }
        let correction = Self.conv1x1(fix, pixels: pixels, weight: fixupWeight2, bias: fixupBias2, threads: threads)
        for i in 0..<kernel.count { kernel[i] += 0.1 * correction[i] }
        return kernel
    }

    /// Step 5: the upsampled `[2h, 2w, C]` of a source `[h, w, C]`, with the kernels of the
    /// `2h × 2w` guidance (`kernels(guidance:...)`). Linear in the source, so the same call
    /// upsamples any map through this stage. `scratch` (a projector call's) holds the
    /// intermediate maps of the blocked route; nil: they are allocated for this call.
    func upsample(_ source: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                  kernels: [Float], threads: Int, scratch: JBUScratch? = nil) throws(LlavaError) -> [Float] {
        let gh = 2 * height, gw = 2 * width
        if AdaptiveConvolution.usesBlocks(radius: Self.radius, channels: channels) {
            return try upsampleBlocked(source, height: height, width: width, channels: channels, kernels: kernels,
                                       threads: threads, scratch: scratch ?? JBUScratch())
        }
        var up = HugePages.zeroedFloats(count: gh * gw * channels)
        up.withUnsafeMutableBufferPointer { u in
            TorchResample.bicubic(source, layout: .hwc, channels: channels, height: height, width: width,
                                  outHeight: gh, outWidth: gw, into: u.baseAddress!, threads: threads)
        }
        return try up.withUnsafeBufferPointer { (u) throws(LlavaError) in
            try kernels.withUnsafeBufferPointer { (k) throws(LlavaError) in
                try Self.convolved(count: gh * gw * channels) { (o) throws(LlavaError) in
                    try AdaptiveConvolution.apply(u.baseAddress!, height: gh, width: gw, channels: channels,
                                                  kernels: k.baseAddress!, radius: Self.radius, into: o, threads: threads)
                }
            }
        }
    }

    /// A new output map of `count` floats that `convolve` writes whole (the adaptive convolution
    /// writes every value), without a zeroing pass first: its pages are cleared on first touch
    /// by the threads that write them. Rethrows `convolve`'s error.
    private static func convolved(count: Int,
                                  _ convolve: (UnsafeMutablePointer<Float>) throws(LlavaError) -> Void) throws(LlavaError) -> [Float] {
        var failure: LlavaError?
        let out = HugePages.writtenFloats(count: count) { o in
            do throws(LlavaError) {
                try convolve(o)
            } catch {
                o.initialize(repeating: 0, count: count)
                failure = error
            }
        }
        if let failure { throw failure }
        return out
    }

    /// `upsample` when the adaptive convolution reads the blocked layout
    /// (`AdaptiveConvolution.usesBlocks`): the bicubic passes write that layout directly
    /// (`luhd_proj_bicubic_*_blocked`), so neither the `[2h, 2w, C]` bicubic map nor the pass
    /// that rearranges it is made. The same values as the bicubic map convolved by
    /// `AdaptiveConvolution.apply`.
    private func upsampleBlocked(_ source: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                                 kernels: [Float], threads: Int, scratch: JBUScratch) throws(LlavaError) -> [Float] {
        let gh = 2 * height, gw = 2 * width
        let ty = TorchResample.cubicTaps(input: height, output: gh), tx = TorchResample.cubicTaps(input: width, output: gw)
        let iy = ty.index.map { Int32($0) }, ix = tx.index.map { Int32($0) }
        // The row sums, then the blocked bicubic map, in one scratch buffer.
        let rows = scratch.floats(height * gw * channels + gh * gw * channels)
        let up = rows + height * gw * channels
        let src = SendablePointer(UnsafeMutablePointer(mutating: source))
        let r = SendablePointer(rows), u = SendablePointer(up)
        let small = gh * gw * channels < (1 << 15)
        let inParts = chunks(height, parts: small ? 1 : threads * 2), outParts = chunks(gh, parts: small ? 1 : threads * 4)
        ix.withUnsafeBufferPointer { ixb in
            tx.weight.withUnsafeBufferPointer { wxb in
                let ixp = SendablePointer(UnsafeMutablePointer(mutating: ixb.baseAddress!))
                let wxp = SendablePointer(UnsafeMutablePointer(mutating: wxb.baseAddress!))
                parallelFor(inParts.count, threads: threads) { p in
                    _ = luhd_proj_bicubic_horizontal_blocked(src.p, inParts[p].lowerBound, inParts[p].upperBound, width,
                                                             channels, gw, ixp.p, wxp.p, r.p)
                }
            }
        }
        iy.withUnsafeBufferPointer { iyb in
            ty.weight.withUnsafeBufferPointer { wyb in
                let iyp = SendablePointer(UnsafeMutablePointer(mutating: iyb.baseAddress!))
                let wyp = SendablePointer(UnsafeMutablePointer(mutating: wyb.baseAddress!))
                parallelFor(outParts.count, threads: threads) { p in
                    _ = luhd_proj_bicubic_vertical_blocked(r.p, gw, channels, outParts[p].lowerBound, outParts[p].upperBound,
                                                           iyp.p, wyp.p, u.p)
                }
            }
        }
        return try kernels.withUnsafeBufferPointer { (k) throws(LlavaError) in
            try Self.convolved(count: gh * gw * channels) { (o) throws(LlavaError) in
                try AdaptiveConvolution.apply(blocked: up, height: gh, width: gw, channels: channels,
                                              kernels: k.baseAddress!, radius: Self.radius, into: o, threads: threads)
            }
        }
    }

    /// A 1×1 convolution on pixel rows: `[pixels, in] → [pixels, out]`, `W` stored
    /// `[out, in, 1, 1]`.
    static func conv1x1(_ x: [Float], pixels: Int, weight: TensorView, bias: TensorView, threads: Int) -> [Float] {
        let outCh = weight.shape[0], inCh = weight.shape[1]
        let w = weight.floats(), b = bias.floats()
        var y = [Float](repeating: 0, count: pixels * outCh)
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                y.withUnsafeMutableBufferPointer { yb in
                    BLAS.sgemm(transB: true, m: pixels, n: outCh, k: inCh, a: xb.baseAddress!, lda: inCh,
                               b: wb.baseAddress!, ldb: inCh, c: yb.baseAddress!, ldc: outCh, threads: threads)
                }
            }
        }
        for p in 0..<pixels { for o in 0..<outCh { y[p * outCh + o] += b[o] } }
        return y
    }
}
