import LlavaUHD
import Testing
import TestSupport

/// The rows of x prepared for the int8 VNNI matrix product (`PreparedInt8Rows`,
/// `luhd_quant_gemm_prepare_x`) against their definition, computed here one block of 32 at a
/// time: per block dx = max|x|/127 (NaN when the block holds a non-finite value), the bytes
/// round(x/dx) (to nearest even, clamped to ±127) + 128, sx = dx·Σq and the two halves' dx·Σq.
/// Every value of a finite block is compared exactly (bit for bit); a non-finite block only has
/// to carry dx = NaN (its products are NaN whatever its bytes). The row length, 37 blocks, takes
/// two groups of 16 blocks (done together) and a rest of 5 (done one by one); the rows are read
/// at a stride longer than a row (`ldx`), and the result must not depend on the thread count.
/// Skipped on CPUs without AVX-512 VNNI (the kernel is built for it).
@Suite struct PreparedInt8RowsTests {
    @Test func matchesTheBlockDefinition() throws {
        guard Int8ProductKernel.vnni.isAvailable else {
            print("PreparedInt8Rows: the int8 VNNI product is not available on this CPU, not run")
            return
        }
        let blocks = 37, cols = 32 * blocks, ldx = cols + 24, rows = 5
        var rng = TestRandom(seed: 11)
        var x = rng.floats(rows * ldx, -3, 3)
        func block(_ row: Int, _ b: Int) -> Int { row * ldx + 32 * b }
        for j in 0..<32 { x[block(0, 3) + j] = 0 }                                    // all zeros: dx = 0
        x[block(1, 17) + 5] = 250                                                     // an outlier
        for j in 0..<32 { x[block(2, 20) + j] = Float(j) * 1e-30 }                    // tiny values
        x[block(3, 16) + 9] = .infinity                                               // non-finite blocks
        x[block(3, 35) + 31] = -.infinity
        x[block(4, 2) + 0] = .nan
        let prepared = PreparedInt8Rows(x, rows: rows, ldx: ldx, columns: cols, kernel: .vnni, threads: 1)
        let stride = prepared.rowBytes
        // The bytes of every row that the products read (a row's padding to 64 bytes is not written).
        let bytes = { (p: PreparedInt8Rows) in
            (0..<p.rows).flatMap { [UInt8](UnsafeRawBufferPointer(start: p.bytes + $0 * p.rowBytes, count: cols + 16 * blocks)) }
        }
        for threads in [2, 3] {
            #expect(bytes(PreparedInt8Rows(x, rows: rows, ldx: ldx, columns: cols, kernel: .vnni, threads: threads)) == bytes(prepared))
        }
        // A contiguous copy of the rows gives the same bytes.
        let packed = (0..<rows).flatMap { x[($0 * ldx)..<($0 * ldx + cols)] }
        #expect(bytes(PreparedInt8Rows(packed, rows: rows, columns: cols, kernel: .vnni, threads: 2)) == bytes(prepared))

        let raw = UnsafeRawPointer(prepared.bytes)
        var nonFinite = 0
        for i in 0..<rows {
            let row = raw + i * stride
            let scales = row + cols
            func scale(_ index: Int) -> Float { scales.loadUnaligned(fromByteOffset: 4 * index, as: Float.self) }
            for b in 0..<blocks {
                let values = x[block(i, b)..<(block(i, b) + 32)]
                guard values.allSatisfy(\.isFinite) else {
                    #expect(scale(b).isNaN, "row \(i) block \(b): dx of a non-finite block is not NaN")
                    nonFinite += 1
                    continue
                }
                let (dx, q) = int8Block(values)
                let stored = (0..<32).map { Int(row.load(fromByteOffset: 32 * b + $0, as: UInt8.self)) - 128 }
                #expect(stored == q, "row \(i) block \(b): quantized values")
                let s0 = q[0..<16].reduce(0, +), s1 = q[16..<32].reduce(0, +)
                #expect(scale(b).bitPattern == dx.bitPattern, "row \(i) block \(b): dx")
                #expect(scale(blocks + b).bitPattern == (dx * Float(s0 + s1)).bitPattern, "row \(i) block \(b): sx")
                #expect(scale(2 * blocks + 2 * b).bitPattern == (dx * Float(s0)).bitPattern, "row \(i) block \(b): sx of half 0")
                #expect(scale(2 * blocks + 2 * b + 1).bitPattern == (dx * Float(s1)).bitPattern, "row \(i) block \(b): sx of half 1")
            }
        }
        #expect(nonFinite == 3)
    }
}
