import LlavaUHD
import Testing

/// `Precision` resolution: exact is always float32; fast picks bf16 only where the CPU has
/// AVX512_BF16 and bf16 products measured at least `CPUProfile.fastMargin` times faster than
/// float32 (so fast is never slower than exact). The bf16 path itself is tested against the
/// exact one (stated bounds) in the vision and language suites.
@Suite struct PrecisionTests {
    static func profile(bf16Feature: Bool, float32: Double, bfloat16: Double?) -> CPUProfile {
        var f = CPUProfile.Features()
        f.avx2 = true
        f.fma = true
        f.f16c = true
        f.avx512 = true
        f.avx512BF16 = bf16Feature
        return CPUProfile(features: f, float32ProductRate: float32, bfloat16ProductRate: bfloat16)
    }

    @Test func exactIsFloat32Everywhere() {
        for p in [Self.profile(bf16Feature: true, float32: 50, bfloat16: 100), Self.profile(bf16Feature: false, float32: 50, bfloat16: nil)] {
            #expect(Precision.exact.matrixArithmetic(on: p) == .float32)
        }
    }

    @Test func fastFollowsTheMeasurement() {
        // Zen 4-like: bf16 products about 1.7x float32.
        #expect(Precision.fast.matrixArithmetic(on: Self.profile(bf16Feature: true, float32: 60, bfloat16: 100)) == .bfloat16)
        // Emerald Rapids-like: bf16 slower than float32.
        #expect(Precision.fast.matrixArithmetic(on: Self.profile(bf16Feature: true, float32: 100, bfloat16: 62)) == .float32)
        // Within the calibration's noise: not worth the precision.
        #expect(Precision.fast.matrixArithmetic(on: Self.profile(bf16Feature: true, float32: 100, bfloat16: 105)) == .float32)
        // No AVX512_BF16: nothing to choose.
        #expect(Precision.fast.matrixArithmetic(on: Self.profile(bf16Feature: false, float32: 100, bfloat16: nil)) == .float32)
    }

    @Test func thisCPUIsMeasured() throws {
        let p = CPUProfile.current
        print(p)
        #expect(p.features == CPUProfile.Features.host)
        #expect(p.float32ProductRate > 0 && p.float32ProductRate.isFinite)
        #expect((p.bfloat16ProductRate != nil) == BF16Product.isAvailable)
        if p.fastMatrixArithmetic == .bfloat16 {
            #expect(try #require(p.bfloat16ProductRate) >= p.float32ProductRate * CPUProfile.fastMargin)
        }
    }
}
