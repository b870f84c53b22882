#if canImport(Glibc)
import Glibc
#endif

// Number formatting shared by every benchmark (no Foundation in this program).

/// `x` with `digits` decimals ("–" for NaN or infinity).
func fmt(_ x: Double, _ digits: Int = 1) -> String {
    guard x.isFinite else { return "–" }
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buffer, 64, "%.\(digits)f", $0) }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// `x` in scientific notation with 1 decimal ("3.2e-04").
func sci(_ x: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buffer, 64, "%.1e", $0) }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Bytes as whole megabytes ("1234 MB").
func megabytes(_ bytes: Int) -> String { "\(Int((Double(bytes) / 1e6).rounded())) MB" }

/// Seconds as milliseconds with one decimal ("12.3 ms").
func milliseconds(_ seconds: Double) -> String { fmt(seconds * 1000) + " ms" }

/// `a / b` as a ratio cell ("1.23×"), "–" when either is missing.
func ratio(_ a: Double?, _ b: Double?) -> String {
    guard let a, let b, a > 0, b > 0, a.isFinite, b.isFinite else { return "–" }
    return fmt(a / b, 2) + "×"
}
