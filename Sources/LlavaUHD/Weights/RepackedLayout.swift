/// The layout of a `QuantizedMatrix`'s load-time copy (`interleavedData`): the same bytes as the
/// stored matrix, the same size, in the order one family of matrix-vector kernels reads fastest,
/// with results bit-identical to those kernels on the stored layout.
package enum RepackedLayout: Sendable {
    /// Row blocks of 4 rows interleaved per group of 256 weights, for the int8 VNNI kernels
    /// (Q8_0, Q4_0, Q4_K; `QuantizedMatrix.interleaved(threads:)`, Sources/CLlavaUHD/quant_repack.c).
    /// Row block `q` (rows `4q..<4q+4`) starts at `q·4·rowBytes`.
    case rowBlocks
    /// Every row at its stored offset, each group of 8 blocks with its 8 f16 scales side by side
    /// ahead of its quants (Q4_0, IQ4_NL, Q8_0), or each Q4_K super-block with its scales and mins
    /// re-packed for a cheaper unpacking and its nibbles in pair order, or each Q3_K / Q5_K / Q6_K
    /// super-block with its 3- / 5- / 6-bit weights re-packed in pair order, or each IQ4_XS
    /// super-block with its 6-bit scales re-packed as signed fields and its indices in pair order,
    /// for the int8 AVX2 kernels
    /// (`QuantizedMatrix.grouped(threads:)`, Sources/CLlavaUHD/quant_repack_avx2.c).
    case scaleGroups

    /// The matrix-vector kernel that reads this layout (its prepared x is that kernel's).
    package var kernel: QuantKernel {
        switch self {
        case .rowBlocks: .int8VNNI
        case .scaleGroups: .int8AVX2
        }
    }
}
