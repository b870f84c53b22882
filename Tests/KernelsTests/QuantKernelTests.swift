import CLlavaUHD
import LlavaUHD
import TestSupport
import Testing

/// A `rows × columns` matrix of `format` with realistic contents: Q8_0/Q4_0/dense quantized from
/// random floats, the other block formats random bytes with sane f16 scales (and mins) in
/// every block: |d| in [0.001, 0.011] of either sign, mins in [0.0005, 0.0055].
func testMatrix(_ format: QuantFormat, rows: Int, columns: Int, seed: UInt64) throws -> QuantizedMatrix {
    var rng = TestRandom(seed: seed)
    if ![.q8_0, .q4_0].contains(format), format.isBlockQuantized {
        let fields = format.halfFloatFields
        let rb = try #require(format.rowBytes(columns: columns))
        var bytes = (0..<(rows * rb)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<(rows * columns / format.blockElements) {
            for (i, at) in fields.enumerated() {
                let sign: Float = i == 0 && rng.next() % 4 == 0 ? -1 : 1
                let v = i == 0 ? sign * (0.001 + 0.01 * Float(rng.next() % 1000) / 1000)
                               : 0.0005 + 0.005 * Float(rng.next() % 1000) / 1000
                let h = Float16(v).bitPattern
                bytes[b * format.blockBytes + at] = UInt8(h & 0xFF)
                bytes[b * format.blockBytes + at + 1] = UInt8(h >> 8)
            }
        }
        let owner = ByteOwner(bytes)
        return try QuantizedMatrix(name: "test", format: format, rows: rows, columns: columns,
                                   data: UnsafeRawPointer(owner.pointer), owner: owner)
    }
    let x = (0..<(rows * columns)).map { _ in rng.uniform(-1, 1) }
    return try QuantizedMatrix.quantize(x, rows: rows, columns: columns, format: format, name: "test")
}

/// Keeps test bytes alive at a stable address.
final class ByteOwner {
    let pointer: UnsafeMutableRawPointer
    init(_ bytes: [UInt8]) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        pointer.copyMemory(from: bytes, byteCount: bytes.count)
    }
    deinit { pointer.deallocate() }
}

/// The int8 image of x that the VNNI kernels multiply with: per block (32 elements, or 256 for
/// the K-format products of `PreparedInt8Rows.Blocking.superBlocksOf256`) dx = max|x| / 127,
/// x~ = dx · round(x / dx) (ties to even, clamped to ±127).
func int8Image(_ x: [Float], block n: Int = 32) -> (values: [Float], dx: [Float]) {
    var out = [Float](repeating: 0, count: x.count)
    var scales: [Float] = []
    for b in 0..<(x.count / n) {
        let (dx, q) = int8Block(x[(b * n)..<(b * n + n)])
        for j in 0..<n { out[b * n + j] = Float(q[j]) * dx }
        scales.append(dx)
    }
    return (out, scales)
}

/// One block of x as the int8 preparations define it: dx = max|x| / 127 and the int8 values
/// round(x / dx) (ties to even, clamped to ±127); a block holding an infinity or a NaN gets
/// dx = NaN and zeros.
func int8Block(_ block: ArraySlice<Float>) -> (dx: Float, values: [Int]) {
    let finite = block.allSatisfy(\.isFinite)
    let dx: Float = finite ? block.map(abs).max()! / 127 : .nan
    let id: Float = finite && dx != 0 ? 1 / dx : 0
    return (dx, block.map { v in finite ? Int(min(127, max(-127, (v * id).rounded(.toNearestOrEven)))) : 0 })
}

/// `rows` rows of `columns` random values in ±3 whose first four blocks of `n` elements hold the
/// hard cases of a preparation (an all-zero block, ±0 and subnormals, exact ties at dx = 1,
/// values near the f32 maximum), with an infinity in the second block of row 1 and a NaN in the
/// third block of row 2.
func preparationInput(columns cols: Int, rows m: Int, block n: Int, seed: UInt64) -> [Float] {
    var rng = TestRandom(seed: seed)
    var x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) * 3 }
    for j in 0..<n {
        x[j] = 0                                                              // all zero
        x[n + j] = j % 2 == 0 ? -0.0 : Float.leastNonzeroMagnitude * Float(j)   // ±0, subnormals
        x[2 * n + j] = j == 0 ? 127 : Float(j % 8) - 3.5                      // dx = 1: exact ties
        x[3 * n + j] = 3e38 * (j % 3 == 0 ? -1 : 0.9)                         // near the f32 maximum
    }
    x[cols + n + 8] = .infinity
    x[2 * cols + 2 * n + 6] = .nan
    return x
}

@Suite struct QuantKernelTests {
    /// f32 kernels: |y − Σ w·x| ≤ 1e-5 · Σ|w·x| (f32 accumulation over a few thousand terms, the
    /// reference summed in f64 from the exactly dequantized weights). VNNI kernels: the same
    /// bound against Σ w·x~ (the int8 image of x they are defined to use; the int8 AVX2 kernels
    /// the same), and against Σ w·x
    /// within the quantization bound Σ_blocks (dx/2)·Σ|w| plus the same rounding term.
    /// Results must not depend on the thread count (bit-identical for 1 and 2 threads).
    @Test(arguments: QuantFormat.allCases)
    func matvecAgainstReference(format: QuantFormat) throws {
        let shapes: [(Int, Int)] = format.blockElements == 256 ? [(37, 512), (5, 2816)] : [(37, 96), (9, 1120), (5, 4096)]
        for (rows, cols) in shapes {
            let w = try testMatrix(format, rows: rows, columns: cols, seed: UInt64(rows * cols))
            let wd = w.dequantized()
            var rng = TestRandom(seed: 99)
            let x = (0..<(4 * cols)).map { _ in rng.uniform(-1, 1) * 2 }
            for kernel in QuantKernel.allCases where kernel.isAvailable && kernel.supports(format) {
                for m in 1...4 {
                    var ys: [[Float]] = []
                    for threads in [1, 2] {
                        var y = [Float](repeating: .nan, count: m * rows)
                        MatMul.linear(x, rows: m, weight: w, into: &y, context: ComputeContext(threads: threads), kernel: kernel)
                        ys.append(y)
                    }
                    #expect(ys[0].map(\.bitPattern) == ys[1].map(\.bitPattern), "\(format) \(kernel) m=\(m): thread count changed the result")
                    var worst = 0.0, worstQuant = 0.0
                    for i in 0..<m {
                        let xi = Array(x[(i * cols)..<((i + 1) * cols)])
                        let image = int8Image(xi)
                        let int8 = kernel == .int8VNNI || kernel == .int8AVX2
                        let xt = int8 ? image.values : xi
                        for r in 0..<rows {
                            var s = 0.0, sa = 0.0, exact = 0.0, qbound = 0.0
                            for k in 0..<cols {
                                let wv = Double(wd[r * cols + k])
                                s += wv * Double(xt[k])
                                sa += abs(wv * Double(xt[k]))
                                exact += wv * Double(xi[k])
                                qbound += abs(wv) * Double(image.dx[k / 32]) / 2
                            }
                            let y = Double(ys[0][i * rows + r])
                            worst = max(worst, abs(y - s) / max(sa, 1e-30))
                            if int8 {
                                worstQuant = max(worstQuant, abs(y - exact) / (qbound + 1e-5 * sa))
                            }
                        }
                    }
                    #expect(worst <= 1e-5, "\(format) \(kernel) m=\(m) \(rows)×\(cols): |err|/Σ|wx| = \(worst)")
                    #expect(worstQuant <= 1, "\(format) \(kernel) m=\(m): exceeds the x-quantization bound (\(worstQuant))")
                }
            }
        }
    }

    /// More than 4 rows: the int8 product (VNNI: every block format, where available; asked for
    /// on a CPU without it, the CPU's own, e.g. AVX2) within 1e-5·Σ|w·x~| of the f64 reference
    /// with x~ the int8 image of x (per 32, or per 256 for the formats of
    /// `PreparedInt8Rows.Blocking.superBlocksOf256`), and tile dequantization + sgemm (forced
    /// with an f32 kernel, and the path of formats no int8 product implements) within 1e-5·Σ|w·x|.
    /// Row counts cover partial 16-row tiles and 6-row blocks of x with remainders.
    @Test(arguments: blockFormats)
    func manyRowsAgainstReference(format: QuantFormat) throws {
        try BLAS.load()
        let rows = 40, cols = format.blockElements == 256 ? 768 : 352
        let w = try testMatrix(format, rows: rows, columns: cols, seed: 5)
        let wd = w.dequantized()
        var rng = TestRandom(seed: 3)
        for m in [5, 7, 13] {
            let x = (0..<(m * cols)).map { _ in rng.uniform(-1, 1) }
            for kernel in [QuantKernel.int8VNNI, .f32AVX2] {
                let int8 = MatMul.usesInt8Product(w, rows: m, kernel: kernel, rowwise: false)
                var ys: [[Float]] = []
                for threads in [1, 2] {
                    var y = [Float](repeating: .nan, count: m * (rows + 3))
                    MatMul.linear(x, rows: m, weight: w, into: &y, ldOut: rows + 3, context: ComputeContext(threads: threads), kernel: kernel)
                    ys.append(y)
                }
                if int8 { #expect(ys[0].map(\.bitPattern) == ys[1].map(\.bitPattern), "\(format) m=\(m): thread count changed the result") }
                var worst = 0.0
                for i in 0..<m {
                    let xi = Array(x[(i * cols)..<((i + 1) * cols)])
                    let block = PreparedInt8Rows.Blocking(for: w) == .superBlocksOf256 ? 256 : 32
                    let xt = int8 ? int8Image(xi, block: block).values : xi
                    for r in 0..<rows {
                        var s = 0.0, sa = 0.0
                        for k in 0..<cols {
                            s += Double(wd[r * cols + k]) * Double(xt[k])
                            sa += abs(Double(wd[r * cols + k]) * Double(xt[k]))
                        }
                        worst = max(worst, abs(Double(ys[0][i * (rows + 3) + r]) - s) / sa)
                    }
                }
                #expect(worst <= 1e-5, "\(format) \(int8 ? "int8" : "sgemm") m=\(m): |err|/Σ|wx| = \(worst)")
            }
        }
    }

    /// Q8_0 and Q4_0 quantization equals GGML's reference quantizer byte for byte
    /// (gguf.quants.quantize on the same input, including all-zero blocks, ties, tiny and
    /// near-f16-overflow values).
    @Test(arguments: [QuantFormat.q8_0, .q4_0])
    func quantizeMatchesReference(format: QuantFormat) throws {
        let dir = Fixtures.root + "/gguf"
        let input = try NPYArray(path: dir + "/quant_input.npy")
        let ref = try NPYArray(path: dir + "/quant_\(format.lowercaseName).npy")
        let rows = input.shape[0], cols = input.shape[1]
        let q = try QuantizedMatrix.quantize(input.floats, rows: rows, columns: cols, format: format)
        #expect(ref.shape == [rows, q.rowBytes])
        let bytes = Array(UnsafeRawBufferPointer(start: q.data, count: q.byteCount))
        #expect(bytes == ref.bytes)
        // Round trip: Q8_0 within half a step of its block (plus the f16 rounding of d); Q4_0
        // within a step (its 16 levels run from -8 d to 7 d, so the end opposite the block's
        // largest magnitude is clamped one step short).
        let back = q.dequantized(), x = input.floats
        for b in 0..<(x.count / 32) {
            let block = x[(b * 32)..<(b * 32 + 32)]
            let amax = block.map(abs).max()!
            let bound = format == .q8_0 ? amax / 127 / 2 : amax / 8
            for j in (b * 32)..<(b * 32 + 32) {
                #expect(abs(back[j] - x[j]) <= bound + amax * 2e-3 + 1e-30, "element \(j)")
            }
        }
    }

    /// The preparation of x for the K-format VNNI kernels is its definition, value for value: per
    /// 32-block dx = max|x| / 127, the int8 values round(x / dx) (ties to even, clamped to ±127),
    /// the block and half-block sums times dx; a block with an infinity or a NaN gets zeros and
    /// dx = NaN. Inputs: random values, an all-zero block, ±0 and subnormals, exact ties, values
    /// near the f32 maximum, an infinity and a NaN.
    @Test func kPreparationMatchesDefinition() throws {
        guard QuantKernel.int8VNNI.isAvailable else { return }
        let cols = 2816, m = 3, nb = cols / 32
        let x = preparationInput(columns: cols, rows: m, block: 32, seed: 31)
        let fmt = Int32(QuantFormat.q4_K.ggmlType), kid = QuantKernel.int8VNNI.rawValue
        let bytes = luhd_quant_prepared_bytes(fmt, kid, cols, Int32(m))
        let stride = bytes / m
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { buf.deallocate() }
        luhd_quant_prepare(fmt, kid, x, cols, cols, Int32(m), buf)
        for i in 0..<m {
            let row = buf + i * stride
            let q = row.assumingMemoryBound(to: Int8.self)
            let f = (row + cols).assumingMemoryBound(to: Float.self)
            for b in 0..<nb {
                let (dx, values) = int8Block(x[(i * cols + 32 * b)..<(i * cols + 32 * b + 32)])
                let s0 = values[0..<16].reduce(0, +), s1 = values[16..<32].reduce(0, +)
                #expect((0..<32).allSatisfy { Int(q[32 * b + $0]) == values[$0] }, "row \(i) block \(b): int8 values")
                let expected: [(Float, Float)] = [(f[b], dx), (f[nb + b], dx * Float(s0 + s1)), (f[2 * nb + 2 * b], dx),
                                                  (f[2 * nb + 2 * b + 1], dx), (f[4 * nb + 2 * b], dx * Float(s0)),
                                                  (f[4 * nb + 2 * b + 1], dx * Float(s1))]
                for (k, (got, want)) in expected.enumerated() {
                    #expect(got.bitPattern == want.bitPattern || (got.isNaN && want.isNaN), "row \(i) block \(b): float \(k)")
                }
            }
        }
    }

    /// The per-256 preparation of x for the K-format int8 products (`luhd_quant_gemm_k_prepare_x`)
    /// is its definition, value for value: per super-block dx = max|x| / 127, the int8 values
    /// round(x / dx) (ties to even, clamped to ±127) stored + 128, the int16 sums of each 32; a
    /// super-block with an infinity or a NaN gets zeros and dx = NaN. Inputs: random values, an
    /// all-zero super-block, ±0 and subnormals, exact ties, values near the f32 maximum, an
    /// infinity and a NaN.
    @Test func superBlockPreparationMatchesDefinition() throws {
        guard QuantKernel.int8VNNI.isAvailable else { return }
        let cols = 2816, m = 3, ns = cols / 256
        let x = preparationInput(columns: cols, rows: m, block: 256, seed: 37)
        let prepared = PreparedInt8Rows(x, rows: m, columns: cols, blocking: .superBlocksOf256, threads: 2)
        #expect(prepared.rowBytes == luhd_quant_gemm_k_x_bytes(cols, 1))
        for i in 0..<m {
            let row = prepared.bytes + i * prepared.rowBytes
            let q = row.assumingMemoryBound(to: UInt8.self)
            let f = (row + cols).assumingMemoryBound(to: Float.self)
            let sums = (row + cols + 4 * ns).assumingMemoryBound(to: Int16.self)
            for s in 0..<ns {
                let (dx, values) = int8Block(x[(i * cols + 256 * s)..<(i * cols + 256 * s + 256)])
                #expect((0..<256).allSatisfy { Int(q[256 * s + $0]) - 128 == values[$0] }, "row \(i) super-block \(s): int8 values")
                #expect(f[s].bitPattern == dx.bitPattern || (f[s].isNaN && dx.isNaN), "row \(i) super-block \(s): dx")
                for j in 0..<8 {
                    #expect(Int(sums[8 * s + j]) == values[(32 * j)..<(32 * j + 32)].reduce(0, +), "row \(i) super-block \(s): sum \(j)")
                }
            }
        }
    }

    /// Dequantization of matrices made in Swift equals a scalar re-derivation for Q8_0/Q4_0, and
    /// TensorView-backed dense matrices pass through.
    @Test func densePassThrough() throws {
        var rng = TestRandom(seed: 1)
        let x = (0..<(3 * 64)).map { _ in rng.uniform(-1, 1) }
        let bf = try QuantizedMatrix.quantize(x, rows: 3, columns: 64, format: .bf16)
        let view = TensorView(name: "v", dtype: .bf16, shape: [3, 64], data: bf.data, owner: ByteOwner([]))
        let m = try QuantizedMatrix(view)
        #expect(m.format == .bf16 && m.rows == 3 && m.columns == 64)
        #expect(m.dequantized() == view.floats())
        #expect(throws: LlavaError.self) {
            try QuantizedMatrix(TensorView(name: "i", dtype: .i32, shape: [2, 2], data: bf.data, owner: ByteOwner([])))
        }
        #expect(throws: LlavaError.self) {
            try QuantizedMatrix(name: "bad", format: .q4_K, rows: 1, columns: 100, data: bf.data, owner: nil)
        }
        #expect(throws: LlavaError.self) { try QuantizedMatrix.quantize(x, rows: 1, columns: 64, format: .q4_K) }
        let sub = try testMatrix(.q8_0, rows: 10, columns: 64, seed: 2)
        #expect(sub.rows(3..<5).dequantized() == Array(sub.dequantized()[(3 * 64)..<(5 * 64)]))
    }
}
