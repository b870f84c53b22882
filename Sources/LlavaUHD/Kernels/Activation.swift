#if canImport(Glibc)
import Glibc
#endif

/// Element-wise activations, in place on `count` floats.
public enum Activation {
    /// GELU with the exact error function: `0.5·x·(1 + erf(x/√2))` (PyTorch `gelu`, `nn.GELU()`).
    public static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { let v = x[i]; x[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752)) }
    }

    /// CLIP's quick GELU: `x·sigmoid(1.702·x)`.
    public static func quickGelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { let v = x[i]; x[i] = v / (1 + expf(-1.702 * v)) }
    }

    /// SiLU: `x·sigmoid(x)`.
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { let v = x[i]; x[i] = v / (1 + expf(-v)) }
    }

    /// Softmax over each row of a row-major `[rows, cols]` matrix, in place, subtracting the
    /// row maximum first. A row of all −inf becomes all zeros.
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let row = x + r * cols
            var m = -Float.infinity
            for j in 0..<cols where row[j] > m { m = row[j] }
            if m == -.infinity { for j in 0..<cols { row[j] = 0 }; continue }
            var sum: Float = 0
            for j in 0..<cols { let e = expf(row[j] - m); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<cols { row[j] *= inv }
        }
    }
}
