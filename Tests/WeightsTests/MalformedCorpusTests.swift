import LlavaUHD
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// One case of `Tests/Fixtures/malformed/expectations.json` (written by
/// scripts/fixtures/make_malformed_weights.py).
struct MalformedCase: Sendable, CustomStringConvertible {
    let name: String
    let status: String
    let message: String
    let derived: Bool
    let tensor: String?
    var description: String { name }

    static let directory = Fixtures.root + "/malformed"

    /// Every case listed, or an empty list if expectations.json cannot be read (the
    /// `corpusIsComplete` test then fails).
    static let all: [MalformedCase] = {
        guard let json = try? Fixtures.json(directory + "/expectations.json"),
              let cases = json["cases"]?.arrayValue else { return [] }
        return cases.compactMap { c in
            guard let name = c["name"]?.stringValue, let status = c["status"]?.stringValue,
                  let message = c["message"]?.stringValue else { return nil }
            return MalformedCase(name: name, status: status, message: message,
                                 derived: c["derived"]?.boolValue ?? false, tensor: c["tensor"]?.stringValue)
        }
    }()

    static var committed: [MalformedCase] { all.filter { !$0.derived } }
    static var derivedCases: [MalformedCase] { all.filter(\.derived) }
}

/// Loads a model directory the way the library's model loader does before building stages:
/// config.json first, then the weights (CLIP hyper-parameters from the tensor shapes too).
func loadModelDirectory(_ dir: String) throws(LlavaError) -> (ModelConfig, WeightStore) {
    let config = try ModelConfig(directory: dir)
    let store = try WeightStore(directory: dir)
    return (config, store)
}

@Suite struct MalformedCorpusTests {
    @Test func corpusIsComplete() throws {
        let cases = MalformedCase.all
        #expect(MalformedCase.committed.count >= 20)
        #expect(Set(cases.map(\.name)).count == cases.count, "case names are unique")
        let known = Set(Status.allCases.map(statusName))
        for c in cases { #expect(known.contains(c.status), "\(c.name): unknown status \(c.status)") }
        // Every committed case has a directory and every directory is a listed case.
        let onDisk = Set(try listDirectory(MalformedCase.directory).filter { !$0.hasPrefix(".") && $0 != "expectations.json" })
        #expect(onDisk == Set(MalformedCase.committed.map(\.name)))
    }

    @Test(arguments: MalformedCase.committed)
    func caseFailsAsExpected(_ c: MalformedCase) {
        let error = thrownError { () throws(LlavaError) in _ = try loadModelDirectory(MalformedCase.directory + "/" + c.name) }
        guard let error else {
            Issue.record("\(c.name): loaded without error, expected \(c.status)")
            return
        }
        #expect(statusName(error.status) == c.status, "\(c.name): \(error)")
        #expect(error.message.contains(c.message), "\(c.name): message \"\(error.message)\" lacks \"\(c.message)\"")
        // Exactly one of config.json and the weights is broken, so a loader may read them in
        // either order (except in the directory that has neither).
        let dir = MalformedCase.directory + "/" + c.name
        let configError = thrownError { () throws(LlavaError) in _ = try ModelConfig(directory: dir) }
        let weightsError = thrownError { () throws(LlavaError) in _ = try WeightStore(directory: dir) }
        if c.name != "dir-no-model-files" {
            #expect((configError == nil) != (weightsError == nil), "\(c.name): config \(String(describing: configError)), weights \(String(describing: weightsError))")
        }
    }

    @Test func reallyEmptyDirectoryIsBadConfig() {
        let dir = TestFiles.makeTemporaryDirectory("empty")
        defer { TestFiles.remove(dir) }
        let error = thrownError { () throws(LlavaError) in _ = try loadModelDirectory(dir) }
        #expect(error?.status == .badConfig)
        #expect(error?.message.contains("config.json") == true)
        // The weights alone: no weight file is an I/O error.
        #expect(thrownError { () throws(LlavaError) in _ = try WeightStore(directory: dir) }?.status == .io)
    }

    @Test func missingDirectoryIsIO() {
        let error = thrownError { () throws(LlavaError) in _ = try loadModelDirectory("/nonexistent/llavauhd-model") }
        #expect(error?.status == .io)
    }

    /// The derived (model-level) cases, made from the tiny coffee-v2-mask7 model by the
    /// generator, checked through the store lookups the stages make.
    @Test(.enabled(if: fileExists(Fixtures.model("coffee-v2-mask7") + "/model.safetensors") && TestFiles.hasPython))
    func derivedCasesFailAsExpected() throws {
        let model = Fixtures.model("coffee-v2-mask7")
        let out = TestFiles.makeTemporaryDirectory("derived")
        defer { TestFiles.remove(out) }
        let script = Fixtures.repoRoot + "/scripts/fixtures/make_malformed_weights.py"
        try #require(TestFiles.run("python3 '\(script)' --from-model '\(model)' --out '\(out)' >/dev/null"))
        let original = try WeightStore(directory: model)
        #expect(MalformedCase.derivedCases.count >= 5)
        for c in MalformedCase.derivedCases {
            let dir = out + "/" + c.name
            // Every derived case is a valid directory at the file level...
            let (config, store) = try loadModelDirectory(dir)
            if c.status == "ok" {
                // ...and the sharded copy holds exactly the original tensors, byte for byte.
                #expect(store.files.count == 2)
                #expect(store.names == original.names)
                for name in original.names {
                    let a = try #require(original[name]), b = try #require(store[name])
                    #expect(a.dtype == b.dtype && a.shape == b.shape && memcmp(a.data, b.data, a.byteCount) == 0, "\(name)")
                }
                _ = try config.visionConfig(from: store)
                continue
            }
            // ...that fails when the model looks its tensors up.
            let error: LlavaError?
            if let tensor = c.tensor {
                let expected = try #require(original[tensor])
                error = thrownError { () throws(LlavaError) in
                    _ = try store.tensor(tensor, shape: expected.shape, dtypes: [expected.dtype])
                }
            } else {
                error = thrownError { () throws(LlavaError) in _ = try config.visionConfig(from: store) }
            }
            #expect(error.map { statusName($0.status) } == c.status, "\(c.name): \(String(describing: error))")
            #expect(error?.message.contains(c.message) == true, "\(c.name): \(String(describing: error))")
        }
    }
}
