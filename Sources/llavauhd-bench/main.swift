#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

// llavauhd-bench: programs that print figures (never timed assertions) and record them in
// BENCHMARKS.md. Each benchmark lives in its own file as a `Benchmark` value listed here.
//
//   swift run -c release llavauhd-bench            # every benchmark
//   swift run -c release llavauhd-bench NAME ...   # the named ones
//   options: --quick (fewer repetitions), --no-write (print only), --out PATH (default BENCHMARKS.md),
//            --layers N (LLM decoder layers to build; full depth extrapolated),
//            --llm-models vicuna-7b,qwen2-7b  --llm-weights BF16,Q8_0,Q4_0,Q4_K_M  --no-compare
//            (the LLM benchmark's models, storages (batch-decode's and e2e's too), and no llama.cpp / PyTorch runs)
//            --kv f32|f16|bf16  --context N  --llm-dir DIR  (the LLM benchmark's KV cache type, prompt
//            length, and an existing model directory to run alone, e.g. a full-depth checkpoint;
//            decode-depth's and batch-decode's cache type and one context instead of 1000 and 2500)

let benchmarks: [Benchmark] = [
    projectorBenchmark,
    tokenizerBenchmark,
    .imageDecode,
    languageBenchmark,
    batchedDecodeBenchmark,
    visionBenchmark,
    visionStagesBenchmark,
    sgemmBenchmark,
    loadBenchmark,
    quantBenchmark,
    decodeKernelBenchmark,
    decodeDepthBenchmark,
    ggufBenchmark,
    realModelBenchmark,
    e2eBenchmark,
    sessionBenchmark,
]

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "--load-probe", arguments.count == 2 {
    loadProbe(arguments[1])   // the child process of the `load` benchmark
    exit(0)
}
let options = BenchOptions(arguments: arguments)
runBenchmarks(benchmarks, options: options)
