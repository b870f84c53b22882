// swift-tools-version:6.1
//
// llava-uhd: LLaVA-UHD v2 inference on the CPU, exported through a stable C ABI.
//
//   libllavauhd.so    the C-ABI library (product `llavauhd`, target `LlavaUHD`)
//   llavauhd-cli      the command-line tool (installed as `llavauhd`; SwiftPM cannot give an
//                     executable product the same name as the library product)
//   llavauhd-bench    the benchmark program that writes BENCHMARKS.md
//
// Build flags:
//   * x86-64-v3 baseline (AVX2, FMA, F16C) so Float16 converts in hardware;
//   * no implicit _Concurrency / _StringProcessing imports, so the shipped library needs only
//     libswiftCore (or nothing at all with -static-stdlib, see `make ship`).
import PackageDescription

let isaFlags = ["-Xcc", "-march=x86-64-v3"]
let slimRuntime = [
    "-Xfrontend", "-disable-implicit-concurrency-module-import",
    "-Xfrontend", "-disable-implicit-string-processing-module-import",
]
let cFlags: [CSetting] = [.unsafeFlags(["-O3", "-march=x86-64-v3", "-fno-math-errno", "-fvisibility=hidden", "-Wall", "-Wextra"])]

/// Test targets, one per source folder (Tests/<Folder>Tests tests Sources/LlavaUHD/<Folder>;
/// CLITests the command-line tool), each checking against references in Tests/Fixtures.
let testSuites = ["SupportTests", "KernelsTests", "WeightsTests", "TokenizerTests", "ImageTests", "LanguageTests", "VisionTests", "ProjectorTests", "RuntimeTests", "CLITests"]

let package = Package(
    name: "llavauhd",
    products: [
        .library(name: "llavauhd", type: .dynamic, targets: ["LlavaUHD"]),
        .executable(name: "llavauhd-cli", targets: ["llavauhd-cli"]),
        .executable(name: "llavauhd-bench", targets: ["llavauhd-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The HTTP server of `llavauhd serve` (CLI target only; never linked into libllavauhd.so).
        // Its default traits (swift-configuration support, full Foundation) are not needed and
        // would add minutes to every build.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
    ],
    targets: [
        // System libraries (Debian: libjpeg-dev, libpng-dev), found with pkg-config.
        // OpenBLAS (Debian: libopenblas0, libopenblas-dev) is deliberately not one of them: it is
        // opened with dlopen at first use so that its kernel set can be chosen before its library
        // constructor runs (see Sources/CLlavaUHD/include/blas_loader.h). Linking it, even
        // through a header-only module with pkg-config, would make it a DT_NEEDED dependency.
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),

        // What must be C: libjpeg's and libpng's setjmp/longjmp error handling, loading OpenBLAS after
        // choosing its core type, and SIMD kernels written with intrinsics.
        .target(name: "CLlavaUHD", dependencies: ["CJPEG", "CPNG"], path: "Sources/CLlavaUHD",
                cSettings: cFlags, linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("m")]),

        // The Swift core: one folder per stage, plus the @_cdecl exports in CABI/.
        .target(name: "LlavaUHD", dependencies: ["CLlavaUHD"], path: "Sources/LlavaUHD",
                swiftSettings: [.unsafeFlags(isaFlags + slimRuntime)]),

        .executableTarget(name: "llavauhd-cli",
                          dependencies: ["LlavaUHD", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Hummingbird", package: "hummingbird")],
                          path: "Sources/llavauhd-cli", swiftSettings: [.unsafeFlags(isaFlags)]),
        .executableTarget(name: "llavauhd-bench", dependencies: ["LlavaUHD", "CLlavaUHD"],
                          path: "Sources/llavauhd-bench", swiftSettings: [.unsafeFlags(isaFlags)]),

        // Test-only helpers: .npy reading, fixture locations, tolerance checks.
        .target(name: "TestSupport", dependencies: ["LlavaUHD"], path: "Tests/TestSupport",
                swiftSettings: [.unsafeFlags(isaFlags)]),
    ] + testSuites.map { name in
        .testTarget(name: name, dependencies: ["LlavaUHD", "TestSupport"], path: "Tests/\(name)",
                    swiftSettings: [.unsafeFlags(isaFlags)])
    }
)
