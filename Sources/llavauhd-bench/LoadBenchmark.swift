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
/// forward pass pays on a cold cache).
var loadBenchmark: Benchmark { Benchmark(
    name: "load",
    summary: "WeightStore load time and RSS on a synthetic 7B-shaped BF16 model directory",
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
    let t0 = now()
    let store = try WeightStore(directory: dir)
    let cold = now() - t0
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
        let t1 = now()
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
        let pass = now() - t1
        md += "| first touch of every page, cold, MADV_SEQUENTIAL (\(megabytes(store.totalBytes))) | "
            + "\(fmt(pass)) s = \(fmt(Double(store.totalBytes) / pass / 1e9)) GB/s |\n"
        md += "| RSS after touching every page (file-backed, reclaimable) | \(megabytes(residentBytes())) |\n"
        if checksum == 42 { print("") }   // keeps the loads
    }
    return md
}
