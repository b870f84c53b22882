#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import TestSupport
import Testing

/// The GGUF reader against files written by the `gguf` package (scripts/make_gguf_fixtures.py),
/// and against hostile files built field by field.
@Suite struct GGUFFileTests {
    static let dir = Fixtures.root + "/gguf"

    @Test func metadataMatchesTheWriter() throws {
        let g = try GGUFFile(path: Self.dir + "/all_types.gguf")
        let expected = try Fixtures.json(Self.dir + "/all_types.json")
        #expect(g.version == 3)
        #expect(g.alignment == 64)
        #expect(g.architecture == "qwen2")
        let entries = try #require(expected["metadata"]?.objectValue)
        #expect(g.metadata.count == entries.count)
        for (key, spec) in entries {
            let type = try #require(spec["type"]?.stringValue)
            let want = try #require(spec["value"])
            let got = try #require(g[key], "key \(key) missing")
            switch (type, got) {
            case ("UINT8", .uint8), ("INT8", .int8), ("UINT16", .uint16), ("INT16", .int16),
                 ("UINT32", .uint32), ("INT32", .int32), ("INT64", .int64):
                #expect(got.intValue == want.intValue, "\(key)")
            case ("UINT64", .uint64(let v)):
                #expect(Double(v) == want.doubleValue, "\(key)")
            case ("FLOAT32", .float32(let v)):
                #expect(v == Float(try #require(want.doubleValue)), "\(key)")
            case ("FLOAT64", .float64(let v)):
                #expect(v == want.doubleValue, "\(key)")
            case ("BOOL", .bool(let v)):
                #expect(v == want.boolValue, "\(key)")
            case ("STRING", .string(let v)):
                #expect(v == want.stringValue, "\(key)")
            case ("ARRAY", .array(_, let items)):
                let wantItems = try #require(want.arrayValue)
                #expect(items.count == wantItems.count, "\(key)")
                for (a, b) in zip(items, wantItems) {
                    switch a {
                    case .string(let s): #expect(s == b.stringValue, "\(key)")
                    case .float32(let f): #expect(f == Float(try #require(b.doubleValue)), "\(key)")
                    case .array(_, let inner):
                        #expect(inner.map(\.intValue) == (b.arrayValue ?? []).map(\.intValue), "\(key)")
                    default: #expect(a.intValue == b.intValue, "\(key)")
                    }
                }
            default:
                Issue.record("\(key): expected \(type), read \(got)")
            }
        }
        // The typed accessors the LLM config and tokenizer use.
        #expect(g.int("qwen2.block_count") == 2)
        #expect(g.strings("tokenizer.ggml.tokens") == ["!", "\"", "Ġthe", "世界", "<|endoftext|>"])
        #expect(g.strings("tokenizer.ggml.merges") == ["Ġ t", "Ġt he"])
        #expect(g.ints("tokenizer.ggml.token_type") == [1, 1, 1, 1, 3])
        #expect(g.floats("tokenizer.ggml.scores") == [0, -1.5, -2.25, -3, 0])
        #expect(g.int("tokenizer.ggml.eos_token_id") == 4)
        #expect(g.string("test.string") == "héllo, 世界 ✓")
        #expect(try g.requireInt("qwen2.embedding_length") == 64)
        #expect(throws: LlavaError.self) { try g.requireInt("qwen2.missing") }
    }

    /// Every tensor's dequantized values equal the `gguf` package's dequantizer bit for bit.
    @Test func tensorsDequantizeExactly() throws {
        let g = try GGUFFile(path: Self.dir + "/all_types.gguf")
        let expected = try Fixtures.json(Self.dir + "/all_types.json")
        let specs = try #require(expected["tensors"]?.arrayValue)
        #expect(g.tensors.map(\.name) == specs.compactMap { $0["name"]?.stringValue })
        for spec in specs {
            let name = try #require(spec["name"]?.stringValue)
            let info = try #require(g.tensorInfo(name))
            #expect(info.type.name == spec["type"]?.stringValue, "\(name)")
            #expect(info.dimensions == (spec["dims"]?.arrayValue ?? []).compactMap(\.intValue), "\(name)")
            #expect(info.fileOffset % 64 == 0, "\(name) is not aligned")
            let ref = try NPYArray(path: Self.dir + "/deq_\(name).npy").floats
            let values: [Float]
            if info.dimensions.count == 2 {
                values = try g.matrix(name).dequantized()
            } else {
                values = try g.tensor(name).floats()
                #expect(try g.tensor(name).shape == info.dimensions.reversed())
            }
            #expect(values.count == ref.count, "\(name)")
            let same = zip(values, ref).allSatisfy { $0.bitPattern == $1.bitPattern }
            #expect(same, "\(name): dequantized values differ from gguf.quants.dequantize")
        }
        // Dense tensors are also TensorViews; block types are not.
        #expect(try g.tensor("bf16.matrix").dtype == .bf16)
        #expect(throws: LlavaError.self) { try g.tensor("q4_k.matrix") }
        let m = try g.matrix("q6_k.matrix")
        #expect(m.rows == 3 && m.columns == 512 && m.format == .q6_K && m.rowBytes == 420)
        #expect(throws: LlavaError.self) { try g.matrix("no.such.tensor") }
    }

    /// Version 2 has the same layout and is accepted.
    @Test func version2() throws {
        var b = GGUFBuilder()
        b.version = 2
        b.kvString("general.architecture", "llama")
        b.f32Tensor("t", count: 8)
        let path = temporaryFile(b.bytes())
        defer { unlink(path) }
        let g = try GGUFFile(path: path)
        #expect(g.version == 2)
        #expect(try g.tensor("t").floats() == (0..<8).map(Float.init))
    }

    /// Every prefix of a valid file that cuts into its header or tensor data is rejected as
    /// malformed, never a crash. (The trailing alignment padding after the last tensor is
    /// optional, so prefixes that keep all tensor bytes are valid.)
    @Test func truncatedFilesAreRejected() throws {
        let whole = try readWholeFile(Self.dir + "/all_types.gguf")
        let g = try GGUFFile(path: Self.dir + "/all_types.gguf")
        let dataEnd = g.tensors.map { $0.fileOffset + $0.byteCount }.max() ?? 0
        #expect(dataEnd <= whole.count && dataEnd > whole.count - 64)
        var lengths = Array(0..<g.dataOffset)
        lengths += stride(from: g.dataOffset, to: dataEnd, by: 61)
        lengths.append(dataEnd - 1)
        for n in lengths {
            let e = ggufError(Array(whole[0..<n]))
            #expect(e?.status == .badWeights, "prefix of \(n) bytes: \(String(describing: e))")
        }
    }

    func expectBad(_ b: GGUFBuilder, _ mentioning: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let e = ggufError(b.bytes())
        #expect(e?.status == .badWeights, "\(String(describing: e))", sourceLocation: sourceLocation)
        #expect(e?.message.contains(mentioning) == true, "\(String(describing: e)) should mention \(mentioning)",
                sourceLocation: sourceLocation)
    }

    @Test func hostileHeaders() {
        var b = GGUFBuilder()
        b.magic = Array("GGUG".utf8)
        expectBad(b, "magic")
        for v: UInt32 in [0, 1, 4] {
            b = GGUFBuilder()
            b.version = v
            expectBad(b, "version \(v)")
        }
        b = GGUFBuilder()
        b.version = 0x0300_0000   // version 3 written big-endian
        expectBad(b, "big-endian")
        b = GGUFBuilder()
        b.tensorCount = UInt64.max
        expectBad(b, "tensor count")
        b = GGUFBuilder()
        b.kvCount = 1 << 40
        expectBad(b, "metadata count")
        b = GGUFBuilder()
        b.kvCount = 3   // claims 3, has 1
        b.kvU32("a.b", 1)
        b.padData = false
        expectBad(b, "metadata count 3 cannot fit")
        b = GGUFBuilder()
        b.kv("a.b", type: 4, [1, 0])   // a UINT32 cut after 2 bytes
        b.padData = false
        expectBad(b, "file ends")
    }

    @Test func hostileMetadata() {
        var b = GGUFBuilder()
        b.kvs = [GGUFBuilder.u64(1 << 40) + Array("key".utf8)]
        expectBad(b, "claims")
        b = GGUFBuilder()
        b.kv("k", type: 8, GGUFBuilder.u64(UInt64.max))   // string length beyond the file
        expectBad(b, "claims")
        b = GGUFBuilder()
        b.kv("k", type: 8, GGUFBuilder.rawStr([0x61, 0xC3, 0x28]))   // invalid UTF-8
        expectBad(b, "UTF-8")
        b = GGUFBuilder()
        b.kvs = [GGUFBuilder.rawStr([0xFF, 0xFE]) + GGUFBuilder.u32(4) + GGUFBuilder.u32(1)]
        expectBad(b, "UTF-8")
        b = GGUFBuilder()
        b.kv("k", type: 13, [0, 0, 0, 0])
        expectBad(b, "unknown value type 13")
        b = GGUFBuilder()
        b.kv("k", type: 7, [2])
        expectBad(b, "boolean")
        b = GGUFBuilder()
        b.kv("k", type: 9, GGUFBuilder.u32(4) + GGUFBuilder.u64(1 << 60))   // array count lies
        expectBad(b, "element count")
        b = GGUFBuilder()
        b.kv("k", type: 9, GGUFBuilder.u32(77) + GGUFBuilder.u64(1))
        expectBad(b, "unknown value type 77")
        // Arrays nested 9 deep.
        var nested = GGUFBuilder.u32(4) + GGUFBuilder.u64(1) + GGUFBuilder.u32(5)
        for _ in 0..<8 { nested = GGUFBuilder.u32(9) + GGUFBuilder.u64(1) + nested }
        b = GGUFBuilder()
        b.kv("k", type: 9, nested)
        expectBad(b, "nests arrays")
        // 2^24 + 1 one-byte elements (17 MB of file) would parse to ~0.5 GB of values.
        b = GGUFBuilder()
        b.kv("k", type: 9, GGUFBuilder.u32(0) + GGUFBuilder.u64(1 << 24 + 1) + [UInt8](repeating: 0, count: 1 << 24 + 1))
        expectBad(b, "more than")
        b = GGUFBuilder()
        b.kvU32("k", 1)
        b.kvU32("k", 2)
        expectBad(b, "appears twice")
        b = GGUFBuilder()
        b.kvs = [GGUFBuilder.str("") + GGUFBuilder.u32(4) + GGUFBuilder.u32(1)]
        expectBad(b, "empty key")
        b = GGUFBuilder()
        b.kvU32("general.alignment", 48)
        expectBad(b, "power of two")
        b = GGUFBuilder()
        b.kv("general.alignment", type: 10, GGUFBuilder.u64(32))
        expectBad(b, "UINT32")
    }

    @Test func hostileTensorInfos() {
        var b = GGUFBuilder()
        b.f32Tensor("t", count: 8)
        b.info("u", dims: [8], type: 99, offset: 64)
        b.data += [UInt8](repeating: 0, count: 64)
        expectBad(b, "tensor 'u' has unknown GGML type id 99")
        b = GGUFBuilder()
        b.info("t", dims: [8], type: 4, offset: 0)   // a removed type id
        b.data = [UInt8](repeating: 0, count: 64)
        expectBad(b, "unknown GGML type id 4")
        b = GGUFBuilder()
        b.f32Tensor("t", count: 8)
        b.info("u", dims: [8], type: 0, offset: 16)     // not a multiple of 32
        expectBad(b, "alignment")
        b = GGUFBuilder()
        b.f32Tensor("t", count: 16)
        b.info("u", dims: [8], type: 0, offset: 32)     // inside t's 64 bytes
        expectBad(b, "overlap")
        b = GGUFBuilder()
        b.f32Tensor("t", count: 8)
        b.info("u", dims: [8], type: 0, offset: 1 << 20)
        expectBad(b, "runs past")
        b = GGUFBuilder()
        b.info("t", dims: [1 << 62, 1 << 62], type: 0, offset: 0)
        expectBad(b, "overflow")
        b = GGUFBuilder()
        b.info("t", dims: [1 << 40], type: 0, offset: 0)
        expectBad(b, "larger than")
        b = GGUFBuilder()
        b.info("t", dims: [1, 1, 1, 1, 1], type: 0, offset: 0)
        expectBad(b, "5 dimensions")
        b = GGUFBuilder()
        b.info("t", dims: [100, 2], type: 12, offset: 0)   // Q4_K rows of 100
        b.data = [UInt8](repeating: 0, count: 1024)
        expectBad(b, "not a multiple")
        b = GGUFBuilder()
        b.f32Tensor("t", count: 8)
        b.f32Tensor("t", count: 8)
        expectBad(b, "appears twice")
        b = GGUFBuilder()
        b.f32Tensor(String(repeating: "x", count: 65), count: 8)
        expectBad(b, "longer than")
        b = GGUFBuilder()
        b.f32Tensor("t", count: 8)
        b.padData = false
        b.data = []
        expectBad(b, "")
    }

    /// A block type the kernels do not implement parses (its size is checked) but cannot be read
    /// as a matrix.
    @Test func knownButUnsupportedTypes() throws {
        var b = GGUFBuilder()
        b.info("q8", dims: [32, 2], type: 9, offset: 0)   // Q8_1: 40 bytes per 32
        b.data = [UInt8](repeating: 0, count: 128)
        let path = temporaryFile(b.bytes())
        defer { unlink(path) }
        let g = try GGUFFile(path: path)
        #expect(g.tensorInfo("q8")?.type.name == "Q8_1")
        #expect(g.tensorInfo("q8")?.byteCount == 80)
        #expect(throws: LlavaError(.unsupported, "\(path): tensor 'q8' has GGML type Q8_1; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS")) {
            try g.matrix("q8")
        }
    }
}
