import LlavaUHD

// llavauhd-bench: programs that print figures (never timed assertions) and record them in
// BENCHMARKS.md. Each benchmark lives in its own file as a `Benchmark` value listed here.
//
//   swift run -c release llavauhd-bench            # every benchmark
//   swift run -c release llavauhd-bench NAME ...   # the named ones
//   options: --quick (fewer repetitions), --no-write (print only), --out PATH (default BENCHMARKS.md),
//            --layers N (LLM decoder layers to build; full depth extrapolated)

let benchmarks: [Benchmark] = [
    projectorBenchmark,
    tokenizerBenchmark,
    .imageDecode,
    languageBenchmark,
    visionBenchmark,
    sgemmBenchmark,
    loadBenchmark,
    quantBenchmark,
]

let options = BenchOptions(arguments: Array(CommandLine.arguments.dropFirst()))
runBenchmarks(benchmarks, options: options)
