#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import Testing
import TestSupport

/// Every block format read from a GGUF file and dequantized, against the `gguf` Python package's
/// dequantization of the same bytes (Tests/Fixtures/gguf/quant_blocks, written by
/// scripts/make_quant_block_fixtures.py: random blocks with zero, negative-zero, negative,
/// subnormal and large scales and mins, and blocks of all-zero and all-one quant bytes). Both
/// compute every product and sum in f32 in the same order, so the results must be bit-identical.
/// Also: the loader checks each format's sizes, so a file that lies about them is an error.
@Suite struct QuantBlockTests {
    static let dir = Fixtures.root + "/gguf/quant_blocks"

    @Test(arguments: QuantFormat.allCases.filter(\.isBlockQuantized))
    func dequantizationMatchesTheGGUFPackage(_ format: QuantFormat) throws {
        let file = try GGUFFile(path: Self.dir + "/quant_blocks.gguf")
        let m = try file.matrix(format.lowercaseName)
        let ref = try NPYArray(path: Self.dir + "/\(format.lowercaseName).npy")
        #expect(m.format == format && ref.shape == [m.rows, m.columns])
        #expect(m.rows * m.columns / format.blockElements * format.blockBytes == file.tensorInfo(format.lowercaseName)?.byteCount)
        let ours = m.dequantized(), theirs = ref.floats
        var differing = 0
        for (a, b) in zip(ours, theirs) where a.bitPattern != b.bitPattern { differing += 1 }
        #expect(differing == 0, "\(format): \(differing) of \(ours.count) elements differ from gguf.quants.dequantize")
        // Row by row through the ranged entry point too (the kernels' fallback uses it).
        var row = [Float](repeating: .nan, count: m.columns)
        m.dequantize(rows: (m.rows - 1)..<m.rows, into: &row)
        #expect(row.map(\.bitPattern) == theirs[((m.rows - 1) * m.columns)...].map(\.bitPattern))
    }

    /// A tensor whose rows are not whole blocks, or whose bytes run past the data section, is
    /// refused with `.badWeights`; a well-formed one of the same type opens.
    @Test(arguments: QuantFormat.allCases.filter(\.isBlockQuantized))
    func sizesAreChecked(_ format: QuantFormat) throws {
        let type = UInt32(format.ggmlType), be = format.blockElements, bb = format.blockBytes
        func open(_ dims: [UInt64], dataBytes: Int) -> LlavaError? {
            var b = GGUFBuilder()
            b.info("w", dims: dims, type: type, offset: 0)
            b.data = [UInt8](repeating: 0, count: dataBytes)
            return ggufError(b.bytes())
        }
        #expect(open([UInt64(be), 3], dataBytes: 3 * bb) == nil)
        #expect(open([UInt64(be + 16), 3], dataBytes: 8 * bb)?.status == .badWeights)
        #expect(open([UInt64(be), 4], dataBytes: 3 * bb)?.status == .badWeights)
        #expect(open([UInt64(be) << 40, 1 << 30], dataBytes: bb)?.status == .badWeights)
    }
}
