import CLlavaUHD

/// Conversions between Float and the 16-bit float formats of weight files and of upstream's
/// mixed-precision casts, vectorised (see `VectorKernels`). Widening is exact; narrowing
/// rounds to nearest even, as PyTorch's `.to(torch.bfloat16)` / `.half()` do (BF16: NaN stays a
/// quiet NaN; F16: values beyond 65504 become ±inf).
package enum FloatConversion {
    /// Elements `[from, from + count)` of `t` (any dtype) as Float into `out`: F16/BF16 through
    /// the vector kernels, F32 copied, other dtypes through `TensorView.convert`.
    package static func widen(_ t: TensorView, from: Int, count: Int, into out: UnsafeMutablePointer<Float>,
                             threads: Int = 1) {
        let o = SendablePointer(out)
        switch t.dtype {
        case .f16, .bf16:
            let src = (t.data + from * 2).assumingMemoryBound(to: UInt16.self)
            let kernel = t.dtype == .f16 ? VectorKernels.table.widen_f16 : VectorKernels.table.widen_bf16
            VectorKernels.forEachRange(count, threads: threads, minimumPerThread: 1 << 16) { r in
                kernel(src + r.lowerBound, o.p + r.lowerBound, r.count)
            }
        default:
            VectorKernels.forEachRange(count, threads: threads, minimumPerThread: 1 << 16) { r in
                t.convert(from: from + r.lowerBound, count: r.count, into: o.p + r.lowerBound)
            }
        }
    }

    /// BF16 bit patterns → Float (exact).
    package static func widenBFloat16(_ src: UnsafePointer<UInt16>, count: Int, into out: UnsafeMutablePointer<Float>) {
        VectorKernels.table.widen_bf16(src, out, count)
    }

    /// F16 bit patterns → Float (exact).
    package static func widenFloat16(_ src: UnsafePointer<UInt16>, count: Int, into out: UnsafeMutablePointer<Float>) {
        VectorKernels.table.widen_f16(src, out, count)
    }

    /// Float → BF16 bit patterns, rounding to nearest even.
    package static func narrowToBFloat16(_ src: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        VectorKernels.table.narrow_bf16(src, out, count)
    }

    /// Float → F16 bit patterns, rounding to nearest even.
    package static func narrowToFloat16(_ src: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        VectorKernels.table.narrow_f16(src, out, count)
    }

    /// Replaces each value by its BF16 rounding (`x.to(torch.bfloat16).float()`), in place.
    package static func roundToBFloat16(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
        let p = SendablePointer(x)
        VectorKernels.forEachRange(count, threads: threads, minimumPerThread: 1 << 16) { r in
            VectorKernels.table.round_bf16(p.p + r.lowerBound, r.count)
        }
    }
}
