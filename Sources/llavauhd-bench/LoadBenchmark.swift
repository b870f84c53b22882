#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `load`: opening a full-size model directory. Writes (once) a synthetic LLaVA-UHD v2 Vicuna-7B
/// directory in BF16 (see `SyntheticCheckpoint`: 14.4 GB in 3 shards with the real names and
/// shapes) under `--dir DIR`, `$LLAVAUHD_BENCH_DIR` or /tmp/llavauhd-bench, then times
/// `WeightStore(directory:)` with the shards dropped from the page cache (cold-ish) and again
/// warm, and reports the resident memory after loading, which must stay small: the weights are
/// mapped, not read. Without `--quick` it also times one pass over every page (what the first
/// forward pass pays on a cold cache). Then the whole model as an application opens it,
/// `LlavaModel(path:)` (config, weights, CLIP tower, projector, LLM, tokenizer: the real
/// tokenizer.model of the test assets is copied in when found), in a child process so that its
/// peak resident memory (VmHWM) is the load's own.
var loadBenchmark: Benchmark { Benchmark(
    name: "load",
    summary: "WeightStore and LlavaModel load time, RSS and peak RSS on a synthetic 7B-shaped BF16 model directory",
    run: runLoadBenchmark) }

private func runLoadBenchmark(_ options: BenchOptions) throws -> String {
    let checkpoint = SyntheticCheckpoint(languageModel: .vicuna7B, multimodal: true)
    let parent = SyntheticCheckpoint.benchDirectory()
    print("synthetic checkpoint: \(parent)/\(checkpoint.layoutName) (\(megabytes(checkpoint.totalBytes)))")
    let (dir, written, writeSeconds) = try checkpoint.ensure(in: parent)
    if written { print("written in \(fmt(writeSeconds)) s") }
    let shardPaths = checkpoint.shardPaths(in: dir)

    SyntheticCheckpoint.dropFromPageCache(shardPaths + [dir + "/model.safetensors.index.json", dir + "/config.json"])
    let rssBefore = residentBytes()
    let t0 = monotonicSeconds()
    let store = try WeightStore(directory: dir)
    let cold = monotonicSeconds() - t0
    let rssAfter = residentBytes()
    guard store.count == checkpoint.tensors.count, store.totalBytes == checkpoint.totalBytes else {
        throw SyntheticCheckpointError("the store holds \(store.count) tensors / \(store.totalBytes) bytes, expected "
                         + "\(checkpoint.tensors.count) / \(checkpoint.totalBytes)")
    }
    let warm = try bestOf(options.repetitions(5)) { _ = try WeightStore(directory: dir) }
    let rssWarm = residentBytes()

    var md = """
    Synthetic LLaVA-UHD v2 Vicuna-7B directory (BF16, \(store.count) tensors, \(megabytes(store.totalBytes)) \
    in \(shardPaths.count) shards + index; written by `SyntheticCheckpoint`), `WeightStore(directory:)`:

    | measurement | value |
    |---|---|
    | load, shards dropped from the page cache (cold-ish) | \(fmt(cold * 1000)) ms |
    | load, warm (best of \(options.repetitions(5))) | \(fmt(warm * 1000)) ms |
    | RSS before → after the first load | \(megabytes(rssBefore)) → \(megabytes(rssAfter)) (+\(megabytes(rssAfter - rssBefore))) |
    | RSS after \(options.repetitions(5) + 1) loads | \(megabytes(rssWarm)) |

    """
    if !options.quick {
        // One pass over every page, cold: the first forward pass's disk reads.
        SyntheticCheckpoint.dropFromPageCache(shardPaths)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var checksum = 0
        let t1 = monotonicSeconds()
        let views = store.names.compactMap { store[$0] }.sorted { $0.data < $1.data }
        for t in views {
            // Read-ahead as a loader would ask for it, then one byte per page.
            let start = Int(bitPattern: t.data) / page * page
            madvise(UnsafeMutableRawPointer(bitPattern: start), Int(bitPattern: t.data) + t.byteCount - start, MADV_SEQUENTIAL)
            var offset = 0
            while offset < t.byteCount {
                checksum &+= Int(t.data.load(fromByteOffset: offset, as: UInt8.self))
                offset += page
            }
        }
        let pass = monotonicSeconds() - t1
        md += "| first touch of every page, cold, MADV_SEQUENTIAL (\(megabytes(store.totalBytes))) | "
            + "\(fmt(pass)) s = \(fmt(Double(store.totalBytes) / pass / 1e9)) GB/s |\n"
        md += "| RSS after touching every page (file-backed, reclaimable) | \(megabytes(residentBytes())) |\n"
        if checksum == 42 { print("") }   // keeps the loads
    }
    md += try modelLoadRows(dir, reps: options.repetitions(3))
    return md
}

/// `LlavaModel(path:)` timed in child processes (`--load-probe DIR`), best of `reps`, with
/// their peak resident memory; rows for the table above.
private func modelLoadRows(_ dir: String, reps: Int) throws -> String {
    guard SyntheticCheckpoint.installTestTokenizer(in: dir) else {
        return "| `LlavaModel(path:)` | not run: no tokenizer.model (set LLAVAUHD_TEST_ASSETS) |\n"
    }
    var best: (seconds: Double, peak: Double, rss: Double)?
    for _ in 0..<max(1, reps) {
        guard let json = runJSON("\(shellQuoted(CommandLine.arguments[0])) --load-probe \(shellQuoted(dir))"),
              let seconds = json["seconds"]?.doubleValue, let peak = json["peak_rss"]?.doubleValue,
              let rss = json["rss"]?.doubleValue else {
            return "| `LlavaModel(path:)` | failed (see the output above) |\n"
        }
        if best == nil || seconds < best!.seconds { best = (seconds, peak, rss) }
    }
    guard let best else { return "" }
    return "| `LlavaModel(path:)`, warm page cache (best of \(max(1, reps)) processes) | \(milliseconds(best.seconds)) |\n"
        + "| resident memory after `LlavaModel` load / peak during it (VmHWM, whole process) | \(megabytes(Int(best.rss))) / \(megabytes(Int(best.peak))) |\n"
}

/// The child side of `modelLoadRows`: loads the model in `dir` and prints one JSON line.
func loadProbe(_ dir: String) {
    let t0 = monotonicSeconds()
    do {
        let model = try LlavaModel(path: dir)
        let seconds = monotonicSeconds() - t0
        print("{\"seconds\": \(seconds), \"rss\": \(residentBytes()), \"peak_rss\": \(peakResidentBytes()), \"tensors\": \(model.weights.count)}")
    } catch {
        print("load probe failed: \(error)")
        exit(1)
    }
}
