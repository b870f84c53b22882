import CLlavaUHD

/// Element-wise activations and row softmax, in place, vectorised (see `VectorKernels`).
///
/// Accuracy against double precision, over results that are normal floats (tested in
/// Tests/KernelsTests/ActivationTests.swift, measured on AVX2 and AVX-512): exp ≤ 1 ulp
/// (0.96), erf ≤ 2 ulp (1.8), GELU ≤ 5 ulp (3.9; ≤ 6 below x = −5.6, where the negative tail is
/// computed from erfc and so keeps its relative accuracy), SiLU and quick-GELU ≤ 3 ulp (2.6),
/// softmax within (3 + |x − max|)·2⁻²⁴ relative (the rounding of x − max, as in PyTorch).
/// Results do not depend on `threads`.
package enum Activation {
    /// GELU with the exact error function: `0.5·x·(1 + erf(x/√2))` (PyTorch `gelu`, `nn.GELU()`).
    package static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
        let p = SendablePointer(x)
        VectorKernels.forEachRange(count, threads: threads) { r in
            VectorKernels.table.gelu_erf(p.p + r.lowerBound, r.count)
        }
    }

    /// CLIP's quick GELU: `x·sigmoid(1.702·x)`.
    package static func quickGelu(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
        let p = SendablePointer(x)
        VectorKernels.forEachRange(count, threads: threads) { r in
            VectorKernels.table.quick_gelu(p.p + r.lowerBound, r.count)
        }
    }

    /// SiLU: `x·sigmoid(x)`.
    package static func silu(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
        let p = SendablePointer(x)
        VectorKernels.forEachRange(count, threads: threads) { r in
            VectorKernels.table.silu(p.p + r.lowerBound, r.count)
        }
    }

    /// The gated MLP activation of LLaMA / Qwen2: `gate = silu(gate) · up`, element-wise.
    package static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, by up: UnsafePointer<Float>, count: Int,
                                    threads: Int = 1) {
        let g = SendablePointer(gate)
        VectorKernels.forEachRange(count, threads: threads) { r in
            VectorKernels.table.silu_mul(g.p + r.lowerBound, up + r.lowerBound, r.count)
        }
    }

    /// Softmax over each row of a row-major `[rows, cols]` matrix, in place, subtracting the
    /// row maximum first (exponentials summed in Float lanes, then scaled by 1/sum). A row of
    /// all −inf becomes all zeros.
    package static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, threads: Int = 1) {
        guard rows > 0, cols > 0 else { return }
        let p = SendablePointer(x)
        VectorKernels.forEachRange(rows, threads: threads, minimumPerThread: max(1, (1 << 14) / cols)) { r in
            let softmax = VectorKernels.table.softmax
            for row in r { softmax(p.p + row * cols, cols) }
        }
    }
}
