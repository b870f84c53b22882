// libFuzzer target `session-file`: a saved session file (luhd_session_load's input), read
// against the test assets' small-noslice model: SessionFile.read on the bytes as they are
// (header, length, checksums, digest, state section), then on a copy whose three CRC-32C
// checksums are recomputed (SessionFile.seal), so that mutations get past the checksums to the
// size, count and value checks behind them; a file that reads is loaded into a session, which
// then answers one token. Seeded with files the library itself saves from the same model (an
// empty session, four evaluated ids, a turn about an image with a sampler), written by the
// target when LLAVAUHD_FUZZ_MAKE_SEEDS names a folder (scripts/fuzz.sh does that first).
import Glibc
@testable import LlavaUHD

private let model: LlavaModel = {
    do {
        return try LlavaModel(path: fuzzFixture("LLAVAUHD_FUZZ_SESSION_MODEL"), options: .init(threads: 1, prefixCacheBytes: 0))
    } catch {
        fatalError("session-file: the fixed model does not load: \(error)")
    }
}()

private let options: ChatSession.Options = {
    var o = ChatSession.Options()
    o.contextLength = 1024
    o.slicing = SlicingOptions(preresizeLongSide: 0)  // the seed's small image stays one view
    return o
}()

/// Writes the seed files into `folder`.
private func makeSeeds(_ folder: String) throws(LlavaError) {
    try SessionFile.save(ChatSession(model: model, options: options), to: folder + "/empty.luhds")
    let ids = try ChatSession(model: model, options: options)
    try ids.eval(tokens: [1, 450, 4996, 17354])
    _ = try ids.sample(SamplingParameters(temperature: 0.8, topK: 40, seed: 3))
    try SessionFile.save(ids, to: folder + "/ids.luhds")
    var pixels: [UInt8] = []
    for i in 0..<(40 * 30) { pixels += [UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i * 7), 90] }
    let chat = try ChatSession(model: model, options: options)
    try chat.chat("What is this?", images: [RGBImage(width: 40, height: 30, pixels: pixels)],
                  parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 2)))
    try SessionFile.save(chat, to: folder + "/image.luhds")
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitSessionFile(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    fuzzInitialize {
        _ = model.digest
        if let folder = getenv("LLAVAUHD_FUZZ_MAKE_SEEDS") {
            do { try makeSeeds(String(cString: folder)) } catch { fatalError("session-file: making seeds failed: \(error)") }
            exit(0)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSessionFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzBytes(data, size)
    _ = try? SessionFile.read(input, model: model, source: "fuzz")
    var sealed = Array(input)
    SessionFile.seal(&sealed)
    let reads = sealed.withUnsafeBytes { (try? SessionFile.read($0, model: model, source: "fuzz")) != nil }
    guard reads else { return 0 }
    let path = FuzzScratch.directory + "/session.luhds"
    sealed.withUnsafeBytes { FuzzScratch.write($0, to: path) }
    if let session = try? SessionFile.load(model: model, path: path, options: options) {
        _ = try? session.chat("Go on.", parameters: ChatParameters(generation: GenerationParameters(maxNewTokens: 1)))
        _ = try? session.sample(SamplingParameters(temperature: 1))
    }
    return 0
}
