extension MatMul {
    /// `out[m×N] = x[m×K] · Wᵀ` for a linear weight `W` (`[N, K]`), dense or quantized:
    /// - dense: `linear(_:rows:weight:into:ldOut:bias:context:)` (float32), or with
    ///   `arithmetic == .bfloat16`, for more than `matvecMaxRows` rows of a BF16 weight on a CPU
    ///   with AVX512_BF16, the bf16 matrix product (`BF16Product`);
    /// - quantized: `linear(_:rows:weight:into:ldOut:context:kernel:)` with the CPU's preferred
    ///   kernel (int8 VNNI, else float32), or `kernel` when given (tests force the AVX2 path so).
    /// Results do not depend on `context.threads`.
    ///
    /// `rowwise` (batched decoding, `DecodeBatcher`): every row of `out` is computed exactly as a
    /// call with that row alone computes it (the matrix-vector kernels for any `m`, whose per-row
    /// sums do not depend on the other rows), while each weight row is still read once for all
    /// `m` rows.
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight: LinearWeight,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int? = nil,
                              arithmetic: MatrixArithmetic = .float32, kernel: QuantKernel? = nil,
                              rowwise: Bool = false, context: ComputeContext) {
        switch weight {
        case .dense(let t):
            if rowwise, DType.floatWeights.contains(t.dtype) {
                matvec(x, rows: m, weight: t, into: out, ldOut: ldOut ?? t.shape[0], threads: context.threads)
            } else if arithmetic == .bfloat16, m > matvecMaxRows, t.dtype == .bf16, t.shape[1] % 2 == 0, BF16Product.isAvailable {
                BF16Product.linear(x, rows: m, weight: t, into: out, ldOut: ldOut ?? t.shape[0], threads: context.threads)
            } else {
                linear(x, rows: m, weight: t, into: out, ldOut: ldOut, context: context)
            }
        case .quantized(let q):
            linear(x, rows: m, weight: q, into: out, ldOut: ldOut, context: context, kernel: kernel, rowwise: rowwise)
        }
    }

    /// `outs[j][m×Nⱼ] = x[m×K] · Wⱼᵀ` for weights that read the same x (q/k/v, gate/up): the
    /// results of one `linear(_:rows:weight:into:ldOut:arithmetic:kernel:rowwise:context:)` call
    /// per weight, bit for bit, with x packed once for BF16 weights in float32 arithmetic
    /// (`BF16WeightProduct`, when all weights are BF16), x quantized to int8 once for the weights that run an int8
    /// matrix product (`MatMul.usesInt8Product`) when two or more of them do (and, when they
    /// have the same columns, their tasks in one parallel loop: `MatMul.int8Products`). When every
    /// weight is quantized and takes the matrix-vector kernels (decoding: up to 4 rows, or
    /// `rowwise`), x is prepared once per format and the products share one parallel loop (one
    /// wait for the slowest thread instead of one per product).
    package static func linear(_ x: UnsafePointer<Float>, rows m: Int, weights: [(weight: LinearWeight, out: UnsafeMutablePointer<Float>)],
                              arithmetic: MatrixArithmetic = .float32, kernel: QuantKernel? = nil,
                              rowwise: Bool = false, context: ComputeContext) {
        if weights.count > 1, let products = matvecProducts(x, rows: m, weights: weights, kernel: kernel, rowwise: rowwise,
                                                           threads: context.threads) {
            let tasks = products.indices.flatMap { p in products[p].parts.indices.map { (p, $0) } }
            parallelFor(tasks.count, threads: context.threads) { t in products[tasks[t].0].run(part: tasks[t].1) }
            return
        }
        if weights.count > 1, arithmetic == .float32, !rowwise, m > matvecMaxRows, BF16WeightProduct.isAvailable {
            let dense = weights.compactMap { item -> (weight: TensorView, out: UnsafeMutablePointer<Float>, ldOut: Int)? in
                guard case .dense(let t) = item.weight, t.dtype == .bf16, t.shape.count == 2,
                      Int(bitPattern: t.data) % 2 == 0 else { return nil }
                return (t, item.out, t.shape[0])
            }
            if dense.count == weights.count, Set(dense.map { $0.weight.shape[1] }).count == 1 {
                BF16WeightProduct.linear(x, rows: m, weights: dense, threads: context.threads)
                return
            }
        }
        // The weights that run an int8 product, when two or more do and all have the same
        // columns, product and blocking: x quantized once, their tasks in one parallel loop (`int8Products`).
        let int8 = weights.compactMap { item -> (weight: QuantizedMatrix, out: UnsafeMutablePointer<Float>)? in
            if case .quantized(let q) = item.weight, usesInt8Product(q, rows: m, kernel: kernel, rowwise: rowwise) { return (q, item.out) }
            return nil
        }
        let products = int8.compactMap { int8ProductKernel(for: $0.weight, rows: m, kernel: kernel, rowwise: rowwise) }
        let blockings = zip(int8, products).map { PreparedInt8Rows.Blocking(for: $0.weight, kernel: $1) }
        let shared = int8.count > 1 && Set(int8.map(\.weight.columns)).count == 1 && Set(blockings).count == 1
            && Set(products).count == 1
        if shared {
            let prepared = PreparedInt8Rows(x, rows: m, columns: int8[0].weight.columns, blocking: blockings[0],
                                            kernel: products[0], threads: context.threads)
            int8Products(prepared, weights: int8, threads: context.threads)
        }
        var prepared: PreparedInt8Rows?
        for (weight, out) in weights {
            if int8.count > 1, case .quantized(let q) = weight,
               let product = int8ProductKernel(for: q, rows: m, kernel: kernel, rowwise: rowwise) {
                if shared { continue }
                let blocking = PreparedInt8Rows.Blocking(for: q, kernel: product)
                let rows = prepared.flatMap { $0.columns == q.columns && $0.blocking == blocking && $0.kernel == product ? $0 : nil }
                    ?? PreparedInt8Rows(x, rows: m, columns: q.columns, blocking: blocking, kernel: product,
                                        threads: context.threads)
                prepared = rows
                int8Product(rows, weight: q, into: out, ldOut: q.rows, threads: context.threads)
            } else {
                linear(x, rows: m, weight: weight, into: out, arithmetic: arithmetic, kernel: kernel, rowwise: rowwise,
                       context: context)
            }
        }
    }

    /// The products of `linear(_:rows:weights:…)` as matrix-vector products with x prepared once
    /// per format and width, when every weight is quantized and takes the matrix-vector kernels
    /// (`linear(_:rows:weight:into:ldOut:context:kernel:rowwise:)`'s choice); else nil.
    static func matvecProducts(_ x: UnsafePointer<Float>, rows m: Int,
                               weights: [(weight: LinearWeight, out: UnsafeMutablePointer<Float>)],
                               kernel: QuantKernel?, rowwise: Bool, threads: Int) -> [MatvecProduct]? {
        guard m > 0, m <= quantizedMatvecMaxRows || rowwise else { return nil }
        var prepared: [PreparedMatvecRows] = []
        var products: [MatvecProduct] = []
        for (weight, out) in weights {
            guard case .quantized(let q) = weight, q.rows > 0 else { return nil }
            let chosen = quantizedKernel(for: q, kernel)
            let rows = prepared.first { $0.serves(q, kernel: chosen) } ?? {
                let p = PreparedMatvecRows(x, rows: m, ldx: q.columns, columns: q.columns, format: q.format, kernel: chosen)
                prepared.append(p)
                return p
            }()
            products.append(MatvecProduct(rows, weight: q, into: out, ldOut: q.rows, threads: threads))
        }
        return products
    }
}
