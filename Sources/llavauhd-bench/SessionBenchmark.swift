#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD

/// `session`: what saved sessions and the model's prefix cache save on a full-shape LLaVA-UHD v2
/// Vicuna-7B directory (synthetic BF16 weights from `SyntheticCheckpoint`, the test assets'
/// Vicuna tokenizer and a photo): one question about the photo is answered (prefill measured),
/// the session is saved and loaded back (warm: the file in the page cache; cold: dropped from it
/// first), and a second session asks another question about the same photo, taking the image
/// from the model's image cache and the prompt's rows from its prefix cache.
///
/// Like `e2e`, the LLM is built at 1 and `--layers N` (default 2) layers and the times are
/// extrapolated to 32 layers by a line through the two depths; `--layers 32` runs the full depth.
var sessionBenchmark: Benchmark { Benchmark(
    name: "session",
    summary: "saved-session restore vs prefill, and prefix-cache reuse, on a 7B-shaped LLaVA-UHD v2",
    run: runSessionBenchmark) }

/// What one depth measured.
private struct SessionFigures {
    var positions = 0, reusedPositions = 0, secondPositions = 0
    var prefill = 0.0, save = 0.0, warmRestore = 0.0, coldRestore = 0.0, reusedPrefill = 0.0
    var fileBytes = 0
    var load = ""
}

private func runSessionBenchmark(_ options: BenchOptions) throws -> String {
    let threads = ComputeContext.defaultThreads
    let model = SyntheticCheckpoint.LanguageModel.vicuna7B
    let fullDepth = model.layers
    let depth = min(max(1, options.layers ?? 2), fullDepth)
    let depths = depth == 1 || depth == fullDepth ? [depth] : [1, depth]
    let photo = SyntheticCheckpoint.testAssets + "/images/grace_hopper.jpg"
    guard fileExists(photo) else { return "not run: no photo in the test assets (set LLAVAUHD_TEST_ASSETS)\n" }
    let image = try ImageDecoder.decodeFile(photo)
    let repeats = options.repetitions(3)
    var parameters = ChatParameters()
    parameters.generation = GenerationParameters(maxNewTokens: 1, stopTokenIds: [])
    var views = 0
    var runs: [SessionFigures] = []
    for d in depths {
        let checkpoint = SyntheticCheckpoint(languageModel: model, multimodal: true, layers: d)
        let (dir, written, seconds) = try checkpoint.ensure(in: SyntheticCheckpoint.benchDirectory())
        if written { print("wrote \(dir) (\(megabytes(checkpoint.totalBytes))) in \(fmt(seconds)) s") }
        guard SyntheticCheckpoint.installTestTokenizer(in: dir) else {
            return "not run: no tokenizer.model in the test assets (set LLAVAUHD_TEST_ASSETS)\n"
        }
        let llava = try LlavaModel(path: dir, options: .init(threads: threads,
                                                                  prefixCacheBytes: LlavaModel.LoadOptions.suggestedPrefixCacheBytes))
        views = try llava.plan(for: image).views.count
        var f = SessionFigures()
        let first = try ChatSession(model: llava)
        let reply = try first.chat("<image>\nWhat is in this photo?", images: [image], parameters: parameters)
        f.positions = reply.promptPositions
        f.prefill = reply.timings.prefill
        let file = SyntheticCheckpoint.benchDirectory() + "/session-\(d)-layers.luhds"
        f.save = try bestOf(repeats) { try first.save(to: file) }
        f.fileBytes = try readFileSize(file)
        f.warmRestore = try bestOf(repeats) { _ = try ChatSession.load(model: llava, path: file) }
        f.coldRestore = try bestOf(repeats) {
            SyntheticCheckpoint.dropFromPageCache([file])
            _ = try ChatSession.load(model: llava, path: file)
        }
        unlink(file)
        let second = try ChatSession(model: llava).chat("<image>\nDescribe the photo in detail.", images: [image],
                                                       parameters: parameters)
        f.secondPositions = second.promptPositions
        f.reusedPositions = second.reusedPositions
        f.reusedPrefill = second.timings.prefill
        f.load = loadAverage()
        print("\(d) layers: \(f.positions) positions, prefill \(fmt(f.prefill)) s, save \(fmt(f.save, 3)) s, "
              + "restore \(fmt(f.warmRestore, 3)) s warm / \(fmt(f.coldRestore, 3)) s cold, \(megabytes(f.fileBytes)); "
              + "second question \(f.reusedPositions) of \(f.secondPositions) positions reused, prefill \(fmt(f.reusedPrefill, 3)) s "
              + "(load \(f.load))")
        runs.append(f)
    }

    /// Full-depth value from the measured depths (a line through two, or the one measured).
    func extrapolate(_ values: [Double]) -> Double {
        guard depths.count == 2 else { return values[0] * (depths[0] == fullDepth ? 1 : Double(fullDepth) / Double(depths[0])) }
        let perLayer = (values[1] - values[0]) / Double(depths[1] - depths[0])
        return values[1] + perLayer * Double(fullDepth - depths[1])
    }
    guard let last = runs.last else { return "not run\n" }
    let c = SyntheticCheckpoint(languageModel: model, multimodal: true).languageConfig
    let kvBytesPerPosition = 2 * fullDepth * c.kvHeadCount * c.headDim * KVCacheType.sessionDefault.bytesPerValue
    let fullFile = extrapolate(runs.map { Double($0.fileBytes) })
    let prefill = extrapolate(runs.map(\.prefill)), warm = extrapolate(runs.map(\.warmRestore))
    let cold = extrapolate(runs.map(\.coldRestore)), save = extrapolate(runs.map(\.save))
    let reused = extrapolate(runs.map(\.reusedPrefill))
    let md = """
    \(machineLine()); \(threads) threads; load average when each depth ended: \(runs.map(\.load).joined(separator: ", ")) \
    (the machine is shared: the figures are slower than a quiet machine's).

    Synthetic LLaVA-UHD v2 Vicuna-7B directory (BF16 weights, real shapes and names), the test assets' Vicuna \
    tokenizer, grace_hopper.jpg (\(views) views), KV cache \(KVCacheType.sessionDefault), exact arithmetic. LLM measured at \
    \(depths.map(String.init).joined(separator: " and ")) layer(s)\(depths == [fullDepth] ? "" : ", extrapolated to \(fullDepth) layers (fixed + per-layer line)"). \
    Restore = `luhd_session_load` (header, state, checksums, model digest, the KV rows read straight into the cache); warm with the file in the \
    page cache, cold after dropping it (posix_fadvise), best of \(repeats). The second question asks about the same photo \
    in a new session: the image comes from the model's image cache and the prompt's rows from its prefix cache (512 MiB).

    | | \(fullDepth) layers |
    |---|---|
    | prompt positions | \(last.positions) |
    | prefill (no reuse) | \(fmt(prefill)) s |
    | session file | \(megabytes(Int(fullFile))) (KV \(megabytes(kvBytesPerPosition * last.positions))) |
    | save | \(fmt(save, 3)) s |
    | restore, warm | \(fmt(warm, 3)) s (\(fmt(prefill / max(warm, 1e-9), 0))× faster than the prefill) |
    | restore, cold | \(fmt(cold, 3)) s (\(fmt(prefill / max(cold, 1e-9), 0))× faster than the prefill) |
    | second question: positions reused from the prefix cache | \(last.reusedPositions) of \(last.secondPositions) |
    | second question: prefill | \(fmt(reused, 3)) s (saves \(fmt(prefill - reused)) s) |

    Measured per depth: \(zip(depths, runs).map { d, f in "\(d) layer(s): prefill \(fmt(f.prefill, 2)) s, save \(fmt(f.save, 3)) s, restore \(fmt(f.warmRestore, 3)) / \(fmt(f.coldRestore, 3)) s (\(fmt(f.prefill / max(f.warmRestore, 1e-9), 0))× faster than the prefill), file \(megabytes(f.fileBytes)), reused prefill \(fmt(f.reusedPrefill, 3)) s" }.joined(separator: "; ")). \
    The two-depth line magnifies timing noise, and on a loaded machine every figure is several times a quiet \
    machine's (restore is reading the file, one CRC-32C pass and one copy of the KV rows; prefill is compute): \
    the ratio of restore to prefill at each measured depth is the robust figure. \
    Full depth: `swift run -c release llavauhd-bench session --layers \(fullDepth)`.

    """
    return md
}

/// The size of the file at `path` in bytes.
private func readFileSize(_ path: String) throws -> Int {
    var st = stat()
    guard stat(path, &st) == 0 else { throw SyntheticCheckpointError("cannot stat \(path)") }
    return Int(st.st_size)
}
