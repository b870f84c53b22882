#if canImport(Glibc)
import Glibc
#endif
@testable import LlavaUHD
import Testing
import TestSupport

/// Saved sessions (`SessionFile`): a loaded session continues exactly as the saving one would
/// have (greedy tokens, logits, the sampling stream), rows convert between KV types, and every
/// damaged, truncated, foreign or lying file ends in its status.
@Suite struct SessionFileTests {
    static let name = "small-noslice"
    static let parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: 6))

    static func model() throws -> LlavaModel {
        try LlavaModel(path: Fixtures.model(name), options: .init(prefixCacheBytes: 0))
    }

    static func options(_ type: KVCacheType = .float16) -> ChatSession.Options {
        var options = ChatSession.Options()
        options.slicing = SlicingOptions(preresizeLongSide: 0)
        options.kvCacheType = type
        return options
    }

    static func image() throws -> RGBImage { try ImageDecoder.decodeFile(Fixtures.upstream(name) + "/input.png") }

    /// A session after one turn about the fixture image, and the file it saved.
    static func savedSession(_ model: LlavaModel, directory: String) throws -> (ChatSession, String) {
        let session = try ChatSession(model: model, options: options())
        try session.chat("What animal is this?", images: [image()], parameters: parameters)
        let path = directory + "/chat.luhds"
        try SessionFile.save(session, to: path)
        return (session, path)
    }

    @Test func loadedSessionContinuesAsTheSavingOne() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let model = try Self.model()
        let (original, path) = try Self.savedSession(model, directory: directory)
        let loaded = try SessionFile.load(model: model, path: path, options: Self.options())
        #expect(loaded.position == original.position)
        #expect(loaded.logits == original.logits)
        #expect(loaded.history == original.history)

        let expected = try original.chat("And what colour is it?", parameters: Self.parameters)
        let reply = try loaded.chat("And what colour is it?", parameters: Self.parameters)
        #expect(reply.tokens == expected.tokens && reply.text == expected.text)
        #expect(reply.reusedPositions == expected.reusedPositions && reply.reusedPositions > 0)
        #expect(reply.timings.encodedImages == 0)
        #expect(loaded.logits == original.logits)
    }

    @Test func samplingStreamContinuesAfterLoad() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let model = try Self.model()
        let session = try ChatSession(model: model, options: Self.options())
        try session.eval(tokens: [1, 450, 4996, 17354])
        let sampling = SamplingParameters(temperature: 1.5, seed: 7)
        _ = try session.sample(sampling)
        let path = directory + "/sampled.luhds"
        try SessionFile.save(session, to: path)
        let loaded = try SessionFile.load(model: model, path: path, options: Self.options())
        for _ in 0..<8 { #expect(try loaded.sample(sampling) == session.sample(sampling)) }
    }

    /// f16 rows loaded into a float32 session widen exactly, so saving that session and loading
    /// it back as f16 gives the original file byte for byte.
    @Test func rowsConvertBetweenKVTypes() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let model = try Self.model()
        let (_, path) = try Self.savedSession(model, directory: directory)
        let wide = try SessionFile.load(model: model, path: path, options: Self.options(.float32))
        #expect(wide.cache.type == .float32)
        try SessionFile.save(wide, to: directory + "/wide.luhds")
        let narrow = try SessionFile.load(model: model, path: directory + "/wide.luhds", options: Self.options(.float16))
        try SessionFile.save(narrow, to: directory + "/narrow.luhds")
        #expect(try readWholeFile(directory + "/narrow.luhds") == readWholeFile(path))
        // The wide session answers; its tokens are those of the f16 rows continued in float32.
        #expect(try !wide.chat("And now?", parameters: Self.parameters).tokens.isEmpty)
    }

    @Test func damagedForeignAndLyingFilesEndInTheirStatus() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let model = try Self.model()
        let (_, path) = try Self.savedSession(model, directory: directory)
        let good = try readWholeFile(path)
        let stateBytes = Int(good[72]) | Int(good[73]) << 8 | Int(good[74]) << 16
        func status(_ bytes: [UInt8], seal: Bool = false, options: ChatSession.Options = Self.options()) -> Status? {
            var bytes = bytes
            if seal { SessionFile.seal(&bytes) }
            let p = directory + "/case.luhds"
            guard TestFiles.write(bytes, to: p) else { return nil }
            return thrownError { () throws(LlavaError) in _ = try SessionFile.load(model: model, path: p, options: options) }?.status
        }
        func changed(_ offset: Int, _ transform: (UInt8) -> UInt8 = { $0 ^ 0x40 }) -> [UInt8] {
            var b = good
            b[offset] = transform(b[offset])
            return b
        }
        #expect(status(good) == nil)
        #expect(status([]) == .badSessionFile)
        #expect(status(Array(good.dropLast())) == .badSessionFile)                 // truncated
        #expect(status(Array(good.prefix(50))) == .badSessionFile)                 // shorter than a header
        #expect(status(good + [0]) == .badSessionFile)                             // trailing byte
        #expect(status(changed(0)) == .badSessionFile)                             // magic
        #expect(status(changed(8, { _ in 2 }), seal: true) == .badSessionFile)     // another format version
        #expect(status(changed(8, { _ in 2 })) == .badSessionFile)                 // header checksum
        #expect(status(changed(good.count - 3)) == .badSessionFile)                // KV checksum
        #expect(status(changed(100)) == .badSessionFile)                           // state checksum
        #expect(status(changed(20), seal: true) == .sessionMismatch)               // another model's digest
        #expect(status(changed(52, { $0 + 1 }), seal: true) == .badSessionFile)    // lying layer count
        #expect(status(changed(64, { $0 + 1 }), seal: true) == .badSessionFile)    // lying position count
        #expect(status(changed(72, { $0 &+ 1 }), seal: true) == .badSessionFile)   // lying state size
        #expect(status(changed(48, { _ in 9 }), seal: true) == .badSessionFile)    // not a KV type
        // Every single-byte change of the state section, made to pass the checksums, is either
        // harmless (a text byte that stays UTF-8, a float) or refused: never a trap.
        // (The first 160 bytes, where the counts and sizes are, then every 1009th.)
        for offset in Array(SessionFile.headerSize..<(SessionFile.headerSize + 160))
            + Array(stride(from: SessionFile.headerSize + 160, to: SessionFile.headerSize + stateBytes, by: 1009)) {
            let s = status(changed(offset, { $0 ^ 0xFF }), seal: true)
            #expect(s == nil || s == .badSessionFile || s == .sessionMismatch)
        }
        // A context smaller than the saved conversation.
        var small = Self.options()
        small.contextLength = 8
        #expect(status(good, options: small) == .contextFull)
        #expect(thrownError { () throws(LlavaError) in _ = try SessionFile.load(model: model, path: directory + "/missing", options: Self.options()) }?.status == .io)
    }

    /// The KV rows are read straight into the new session's cache and their checksum checked
    /// only at the end: a file whose KV section is damaged (its last row, or its first) ends in
    /// `.badSessionFile` without a session, and without offering its rows to the model's prefix
    /// cache; the intact file then loads and continues as the saving session. Each kind of
    /// rows (the cache's type, read straight in, and another, converted through the staging
    /// buffer) takes the same path.
    @Test func damagedRowsLeaveNoSessionAndNoSharedRows() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let model = try LlavaModel(path: Fixtures.model(Self.name), options: .init(prefixCacheBytes: 64 << 20))
        let (original, path) = try Self.savedSession(try Self.model(), directory: directory)
        let good = try readWholeFile(path)
        let stateBytes = Int(good[72]) | Int(good[73]) << 8 | Int(good[74]) << 16
        let damaged = directory + "/damaged.luhds"
        for offset in [good.count - 1, SessionFile.headerSize + stateBytes] {
            var bytes = good
            bytes[offset] ^= 0x01
            #expect(TestFiles.write(bytes, to: damaged))
            for type in [KVCacheType.float16, .float32] {
                let error = thrownError { () throws(LlavaError) in _ = try SessionFile.load(model: model, path: damaged, options: Self.options(type)) }
                #expect(error?.status == .badSessionFile, "byte \(offset), \(type)")
                #expect(error?.message.contains("KV section") == true, "\(error?.message ?? "")")
                #expect(model.prefixCache.usage.blocks == 0)
            }
        }
        let loaded = try SessionFile.load(model: model, path: path, options: Self.options())
        #expect(model.prefixCache.usage.blocks > 0)
        let expected = try original.chat("And what colour is it?", parameters: Self.parameters)
        #expect(try loaded.chat("And what colour is it?", parameters: Self.parameters).tokens == expected.tokens)
    }

    /// Another model's session file (same format, other digest) is a mismatch.
    @Test func anotherModelsFileIsAMismatch() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let (_, path) = try Self.savedSession(try Self.model(), directory: directory)
        let other = try LlavaModel(path: Fixtures.model("rocket-v1"))
        #expect(thrownError { () throws(LlavaError) in _ = try SessionFile.load(model: other, path: path, options: Self.options()) }?.status == .sessionMismatch)
    }

    /// A save never writes through what sits at its temporary file's name (a link planted
    /// there, or a crashed process's leftover): it takes the next free name.
    @Test func saveSkipsTakenTemporaryNames() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let victim = directory + "/victim"
        #expect(TestFiles.write(Array("keep me".utf8), to: victim))
        let path = directory + "/chat.luhds"
        let next = SessionFile.temporaryCounter.load(ordering: .relaxed) + 1
        let planted = (next..<(next + 8)).map { path + ".tmp-\(getpid())-\($0)" }
        for link in planted { #expect(symlink(victim, link) == 0) }
        let (session, _) = try Self.savedSession(try Self.model(), directory: directory)
        var size = stat()
        #expect(stat(victim, &size) == 0 && size.st_size == 7)  // "keep me", not truncated
        for link in planted {
            var target = [UInt8](repeating: 0, count: 4096)
            let n = target.withUnsafeMutableBytes { readlink(link, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4095) }
            #expect(n > 0 && String(decoding: target.prefix(max(0, n)), as: UTF8.self) == victim, "\(link) was replaced")
        }
        let loaded = try SessionFile.load(model: session.model, path: path, options: Self.options())
        #expect(loaded.cache.count == session.cache.count)
    }

    /// The same weights with another tokenizer configuration (here another end-of-sequence
    /// token) give saved ids other meanings: a mismatch too. The same files under another path
    /// are the same model.
    @Test func sameWeightsWithAnotherTokenizerIsAMismatch() throws {
        let directory = TestFiles.makeTemporaryDirectory("session-file")
        defer { TestFiles.remove(directory) }
        let (_, path) = try Self.savedSession(try Self.model(), directory: directory)
        let source = Fixtures.model(Self.name)
        for (copy, tokenizerConfig) in [("same", nil), ("other-eos", #"{"eos_token": "<unk>"}"#)] {
            let model = directory + "/" + copy
            #expect(TestFiles.run("mkdir -p '\(model)' && ln -s '\(source)'/* '\(model)/'"))
            if let tokenizerConfig {
                #expect(TestFiles.write(Array(tokenizerConfig.utf8), to: model + "/tokenizer_config.json"))
            }
            let loaded = try LlavaModel(path: model, options: .init(prefixCacheBytes: 0))
            let error = thrownError { () throws(LlavaError) in _ = try SessionFile.load(model: loaded, path: path, options: Self.options()) }
            #expect(error?.status == (tokenizerConfig == nil ? nil : .sessionMismatch), "\(copy): \(error?.message ?? "loaded")")
        }
    }
}
