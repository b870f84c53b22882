/// A `DecoderTensorSource` that hands out the quantized projections and output head of `base`
/// in the memory decoding reads fastest, with bit-identical results: their row-interleaved
/// copies (`QuantizedMatrix.interleaved(threads:)`) for the int8 VNNI matrix-vector kernels, or,
/// for the int8 AVX2 kernels, their scale-grouped copies (`QuantizedMatrix.grouped(threads:)`:
/// Q4_0, IQ4_NL, IQ4_XS, Q8_0, Q4_K, Q5_K, Q6_K) or else the stored bytes copied into huge pages
/// (`QuantizedMatrix.streamedCopy(threads:)`). Dense weights, the embedding table (read a row
/// at a time) and formats or shapes without such a copy pass through unchanged.
struct InterleavingDecoderSource<Base: DecoderTensorSource>: DecoderTensorSource {
    let base: Base
    /// Threads the repacking may use.
    let threads: Int

    /// True when a decoder whose quantized products use `kernel` reads such copies: with the
    /// preferred kernels (nil) on a CPU that runs the int8 VNNI or int8 AVX2 kernels. A forced
    /// kernel (`.int8VNNI` included) reads the stored bytes where they are, which is how tests
    /// and benchmarks set the two layouts side by side.
    static func applies(to kernel: QuantKernel?) -> Bool {
        (QuantKernel.int8VNNI.isAvailable || QuantKernel.int8AVX2.isAvailable) && kernel == nil
    }

    func name(_ tensor: DecoderTensor, layer: Int) -> String { base.name(tensor, layer: layer) }
    func contains(_ tensor: DecoderTensor, layer: Int) -> Bool { base.contains(tensor, layer: layer) }
    func vector(_ tensor: DecoderTensor, layer: Int, count: Int) throws(LlavaError) -> [Float] {
        try base.vector(tensor, layer: layer, count: count)
    }
    var interleavedRotaryRows: Bool { base.interleavedRotaryRows }
    var description: String { base.description }

    func matrix(_ tensor: DecoderTensor, layer: Int, shape: [Int]) throws(LlavaError) -> LinearWeight {
        let w = try base.matrix(tensor, layer: layer, shape: shape)
        guard tensor != .embedTokens, case .quantized(let q) = w else { return w }
        if q.canInterleave { return .quantized(q.interleaved(threads: threads)) }
        return .quantized(q.canGroup ? q.grouped(threads: threads) : q.streamedCopy(threads: threads))
    }
}
