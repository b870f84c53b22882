#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// One benchmark: a name, a one-line description and a body that measures and returns the
/// Markdown it wants in BENCHMARKS.md (its own section, replaced on each run).
struct Benchmark {
    let name: String
    let summary: String
    let run: (BenchOptions) throws -> String
}

struct BenchOptions {
    var names: [String] = []
    var quick = false
    var write = true
    var output = "BENCHMARKS.md"
    /// `--layers N`: decoder layers to build in the LLM benchmark (its full-depth figures are
    /// then extrapolated); nil = the benchmark's default.
    var layers: Int?
    /// `--llm-models vicuna-7b,qwen2-7b`: the LLM benchmark's models (nil: both).
    var llmModels: [String]?
    /// `--llm-weights BF16,Q8_0,Q4_0,Q4_K_M`: the LLM and batch-decode benchmarks' storages, by
    /// the format names of their rows (nil: all).
    var llmWeights: [String]?
    /// `--no-compare`: the LLM benchmark skips llama.cpp and PyTorch.
    var compare = true
    /// `--kv f32|f16|bf16`: the LLM benchmark's KV cache type (nil: `KVCacheType.sessionDefault`).
    var kvCache: KVCacheType?
    /// `--context N`: the LLM benchmark's prompt length, the context decoding runs at (nil: 1000).
    var context: Int?
    /// `--llm-dir DIR`: the LLM benchmark runs only the language model of this existing model
    /// directory (any depth, read only), e.g. a full-depth checkpoint the e2e benchmark wrote.
    var llmDirectory: String?

    init(arguments: [String]) {
        var it = arguments.makeIterator()
        while let a = it.next() {
            switch a {
            case "--quick": quick = true
            case "--no-write": write = false
            case "--out": output = it.next() ?? output
            case "--layers": layers = it.next().flatMap { Int($0) }
            case "--llm-models": llmModels = it.next()?.split(separator: ",").map(String.init)
            case "--llm-weights": llmWeights = it.next()?.split(separator: ",").map(String.init)
            case "--no-compare": compare = false
            case "--kv": kvCache = it.next().flatMap { KVCacheType(name: $0) }
            case "--context": context = it.next().flatMap { Int($0) }.map { max(1, $0) }
            case "--llm-dir": llmDirectory = it.next()
            default: names.append(a)
            }
        }
    }

    /// Repetitions for best-of-N timing.
    func repetitions(_ full: Int) -> Int { quick ? max(1, full / 3) : full }
}

/// The fastest of `n` runs of `body`, in seconds.
func bestOf(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<max(1, n) {
        let t0 = monotonicSeconds()
        try body()
        best = min(best, monotonicSeconds() - t0)
    }
    return best
}

/// Resident set size of this process in bytes (from /proc/self/statm).
func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, resident = 0
    _ = withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &resident) { r in
            withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
        }
    }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Peak resident set size of this process in bytes (VmHWM of /proc/self/status).
func peakResidentBytes() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if s.hasPrefix("VmHWM:") {
            let digits = s.utf8.filter { $0 >= 48 && $0 <= 57 }
            return (Int(String(decoding: digits, as: UTF8.self)) ?? 0) * 1024
        }
    }
    return 0
}

/// The 1-minute load average (other processes on the machine skew every figure).
func loadAverage() -> String {
    guard let f = fopen("/proc/loadavg", "r") else { return "?" }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 128)
    guard fgets(&line, 128, f) != nil else { return "?" }
    let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return String(s.split(separator: " ").first ?? "?")
}

/// The current UTC date and time, e.g. "2026-11-26 23:40 UTC".
func utcDate() -> String {
    var t = time(nil)
    var parts = tm()
    gmtime_r(&t, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M UTC", &parts)
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A one-line description of the machine and the BLAS setup, printed with every figure.
func machineLine() -> String {
    var cpu = "unknown CPU"
    if let f = fopen("/proc/cpuinfo", "r") {
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, 512, f) != nil {
            let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if s.hasPrefix("model name") {
                cpu = String(s.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters()
                break
            }
        }
    }
    try? BLAS.load()
    return "\(cpu), \(ComputeContext.defaultThreads) CPUs, OpenBLAS core \(BLAS.coreName)"
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Replaces the `<!-- bench:NAME -->` … `<!-- /bench:NAME -->` section of the file (appending
/// it when absent).
func writeSection(name: String, markdown: String, to path: String) {
    let begin = "<!-- bench:\(name) -->", end = "<!-- /bench:\(name) -->"
    var text = (try? readWholeFile(path)).map { String(decoding: $0, as: UTF8.self) }
        ?? "# Benchmarks\n\nWritten by `llavauhd-bench` (Sources/llavauhd-bench); do not edit by hand.\n"
    let section = "\(begin)\n\(markdown.trimmingCharacters())\n\(end)"
    if let b = text.firstRange(of: begin), let e = text.firstRange(of: end), b.lowerBound < e.upperBound {
        text.replaceSubrange(b.lowerBound..<e.upperBound, with: section)
    } else {
        text += "\n" + section + "\n"
    }
    guard let f = fopen(path, "w") else { print("cannot write \(path)"); return }
    fputs(text, f)
    fclose(f)
}

func runBenchmarks(_ all: [Benchmark], options: BenchOptions) {
    let unknown = options.names.filter { name in !all.contains { $0.name == name } }
    guard unknown.isEmpty else {
        let message = "llavauhd-bench: unknown benchmark \(unknown.joined(separator: ", ")); benchmarks: "
            + all.map { "\($0.name) (\($0.summary))" }.joined(separator: ", ") + "\n"
        _ = message.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        exit(2)
    }
    let selected = options.names.isEmpty ? all : all.filter { options.names.contains($0.name) }
    print(machineLine())
    for b in selected {
        print("== \(b.name): \(b.summary)")
        do {
            let stamp = "_Measured \(utcDate()) on \(machineLine()); load average \(loadAverage()) at the start._\n\n"
            let md = stamp + (try b.run(options))
            print(md)
            if options.write { writeSection(name: b.name, markdown: md, to: options.output) }
        } catch {
            print("\(b.name) failed: \(error)")
        }
    }
}
