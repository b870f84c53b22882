import LlavaUHD
import Testing

/// `Precision` resolution: exact is always float32; fast picks bf16 only where the CPU has
/// AVX512_BF16 and bf16 products measured at least `CPUProfile.fastMargin` times faster than
/// float32 (so fast is never slower than exact); for the vision tower, int8 first where the CPU
/// has AVX-512 VNNI and int8 products measured that much faster. The bf16 and int8 paths
/// themselves are tested against the exact one (stated bounds) in BF16ProductTests,
/// Int8ProductTests and the vision suite's FastVisionTests.
@Suite struct PrecisionTests {
    static func profile(bf16Feature: Bool, float32: Double, bfloat16: Double?, vnni: Bool = false,
                        int8: Double? = nil) -> CPUProfile {
        var f = CPUProfile.Features()
        f.avx2 = true
        f.fma = true
        f.f16c = true
        f.avx512 = true
        f.avx512BF16 = bf16Feature
        f.avx512VNNI = vnni
        return CPUProfile(features: f, float32ProductRate: float32, bfloat16ProductRate: bfloat16, int8ProductRate: int8)
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

    @Test func exactVisionIsFloat32Everywhere() {
        for p in [Self.profile(bf16Feature: true, float32: 50, bfloat16: 100, vnni: true, int8: 200),
                  Self.profile(bf16Feature: false, float32: 50, bfloat16: nil)] {
            #expect(Precision.exact.visionArithmetic(on: p) == .float32)
        }
    }

    @Test func fastVisionPrefersInt8WhereMeasuredFaster() {
        // Zen 4-like: int8 about 3x float32, bf16 1.7x.
        #expect(Precision.fast.visionArithmetic(on: Self.profile(bf16Feature: true, float32: 60, bfloat16: 100, vnni: true, int8: 180)) == .int8)
        // Emerald Rapids-like: int8 about 2.5x float32, bf16 slower.
        #expect(Precision.fast.visionArithmetic(on: Self.profile(bf16Feature: true, float32: 100, bfloat16: 62, vnni: true, int8: 250)) == .int8)
        // Int8 within the calibration's noise: bf16 if that is faster, else float32.
        #expect(Precision.fast.visionArithmetic(on: Self.profile(bf16Feature: true, float32: 60, bfloat16: 100, vnni: true, int8: 65)) == .bfloat16)
        #expect(Precision.fast.visionArithmetic(on: Self.profile(bf16Feature: true, float32: 100, bfloat16: 62, vnni: true, int8: 105)) == .float32)
        // No AVX-512 VNNI (an AVX2-only CPU, or AVX-VNNI without AVX-512): no int8 product.
        #expect(Precision.fast.visionArithmetic(on: Self.profile(bf16Feature: false, float32: 100, bfloat16: nil)) == .float32)
        #expect(Precision.fast.visionArithmetic(on: Self.profile(bf16Feature: true, float32: 60, bfloat16: 100)) == .bfloat16)
        // The LLM side never gets int8 (its dense weights have no Q8_0 copy).
        #expect(Precision.fast.matrixArithmetic(on: Self.profile(bf16Feature: true, float32: 60, bfloat16: 100, vnni: true, int8: 180)) == .bfloat16)
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
        #expect((p.int8ProductRate != nil) == Int8Product.isAvailable)
        if p.fastVisionArithmetic == .int8 {
            #expect(try #require(p.int8ProductRate) >= p.float32ProductRate * CPUProfile.fastMargin)
        }
    }
}
