import Foundation
import LlavaUHD
import Testing
import TestSupport

/// Model-file contracts of issue 12: `llm_gguf` names a plain file inside the model directory,
/// like the safetensors shard names (and like them it reaches the loader from config.json).
@Suite struct HostileModelFilesTests {
    /// A new directory under `scratch` holding a config.json that names `llmGGUF`, an
    /// `inside.gguf` file and a sibling directory with `outside.gguf`.
    static func directory(llmGGUF: String, in scratch: String) throws -> (dir: String, outside: String) {
        let fm = FileManager.default
        let root = scratch + "/\((try? fm.contentsOfDirectory(atPath: scratch).count) ?? 0)"
        try fm.createDirectory(atPath: root + "/model", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: true)
        for path in [root + "/model/inside.gguf", root + "/elsewhere/outside.gguf"] {
            _ = fm.createFile(atPath: path, contents: Data("GGUF".utf8))
        }
        let config = "{\"llm_gguf\": \"\(llmGGUF)\"}"
        try config.write(toFile: root + "/model/config.json", atomically: true, encoding: .utf8)
        return (root + "/model", root + "/elsewhere/outside.gguf")
    }

    @Test func llmGGUFMustBeAPlainFileNameInTheDirectory() throws {
        let fm = FileManager.default
        let scratch = TestFiles.makeTemporaryDirectory("llm-gguf")
        defer { TestFiles.remove(scratch) }
        let ok = try Self.directory(llmGGUF: "inside.gguf", in: scratch)
        #expect(try GGUFLanguageModel.locate(directory: ok.dir, named: "inside.gguf") == ok.dir + "/inside.gguf")

        for name in ["../elsewhere/outside.gguf", "sub/inside.gguf", "..", "."] {
            let d = try Self.directory(llmGGUF: name, in: scratch)
            do {
                let found = try GGUFLanguageModel.locate(directory: d.dir, named: name)
                Issue.record("llm_gguf '\(name)' was accepted: \(found ?? "nil")")
            } catch {
                #expect(error.status == .badConfig, "\(name): \(error)")
            }
        }
        // An absolute path to a file that exists.
        let absolute = try Self.directory(llmGGUF: ok.outside, in: scratch)
        do {
            _ = try GGUFLanguageModel.locate(directory: absolute.dir, named: ok.outside)
            Issue.record("an absolute llm_gguf was accepted")
        } catch {
            #expect(error.status == .badConfig)
        }
        // A plain name that is a symbolic link to a file outside the directory.
        let link = try Self.directory(llmGGUF: "link.gguf", in: scratch)
        try fm.createSymbolicLink(atPath: link.dir + "/link.gguf", withDestinationPath: link.outside)
        do {
            _ = try GGUFLanguageModel.locate(directory: link.dir, named: "link.gguf")
            Issue.record("a link out of the directory was accepted")
        } catch {
            #expect(error.status == .badConfig)
            #expect(error.message.contains("outside"))
        }
        // A link that stays inside is fine.
        let inner = try Self.directory(llmGGUF: "alias.gguf", in: scratch)
        try fm.createSymbolicLink(atPath: inner.dir + "/alias.gguf", withDestinationPath: "inside.gguf")
        #expect(try GGUFLanguageModel.locate(directory: inner.dir, named: "alias.gguf") == inner.dir + "/alias.gguf")
    }
}
