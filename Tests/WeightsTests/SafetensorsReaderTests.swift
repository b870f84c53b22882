import LlavaUHD
import Testing
import TestSupport

/// The reader's good paths against Tests/Fixtures/safetensors (written by
/// scripts/fixtures/make_malformed_weights.py, whose expected.json holds every value as float32 bits,
/// decoded by the generator with Python's struct module and its own FP8 decoder, cross-checked
/// against torch with --check-with-torch).
@Suite struct SafetensorsReaderTests {
    static let root = Fixtures.root + "/safetensors"

    /// Expected values of one tensor: float32 bit patterns, nil for NaN.
    struct ExpectedTensor {
        let dtype: String
        let shape: [Int]
        let bits: [UInt32?]
        let file: String?
    }

    static func expected(_ group: String) throws -> [String: ExpectedTensor] {
        let json = try Fixtures.json(root + "/expected.json")
        let members = try #require(json[group]?.objectValue)
        var out: [String: ExpectedTensor] = [:]
        for (name, e) in members {
            let bits = try #require(e["float32_bits"]?.arrayValue).map { v -> UInt32? in
                v.intValue.map { UInt32(truncatingIfNeeded: $0) }
            }
            out[name] = ExpectedTensor(dtype: try #require(e["dtype"]?.stringValue),
                                       shape: try #require(e["shape"]?.arrayValue).compactMap(\.intValue),
                                       bits: bits, file: e["file"]?.stringValue)
        }
        return out
    }

    /// Compares converted values with expected bits exactly (any NaN matches "nan").
    static func check(_ got: [Float], _ want: [UInt32?], _ name: String) {
        #expect(got.count == want.count, "\(name): \(got.count) values, expected \(want.count)")
        for (i, (g, w)) in zip(got, want).enumerated() {
            if let w {
                #expect(g.bitPattern == w, "\(name)[\(i)]: \(g) (0x\(String(g.bitPattern, radix: 16))), expected \(Float(bitPattern: w))")
            } else {
                #expect(g.isNaN, "\(name)[\(i)]: \(g), expected NaN")
            }
        }
    }

    @Test func everyDTypeConvertsExactly() throws {
        let expected = try Self.expected("dtypes")
        let file = try SafetensorsFile(path: Self.root + "/dtypes/model.safetensors")
        #expect(file.metadata.map(\.0) == ["format"] && file.metadata.map(\.1) == ["pt"])
        #expect(file.tensors.count == expected.count)
        // Every readable dtype is covered.
        #expect(Set(file.tensors.map(\.dtype)) == Set(DType.allCases))
        for t in file.tensors {
            let e = try #require(expected[t.name], "\(t.name) is not in expected.json")
            #expect(t.dtype.rawValue == e.dtype && t.shape == e.shape, "\(t.name)")
            #expect(file.file.contains(t.data) || t.count == 0, "\(t.name) points into the mapping")
            Self.check(t.floats(), e.bits, t.name)
            // Element access and partial conversions starting at odd offsets agree.
            if t.count > 0 {
                Self.check([t.float(at: t.count - 1)], [e.bits[t.count - 1]], t.name + " last")
            }
            if t.count > 21 {
                var part = [Float](repeating: 0, count: t.count - 3)
                part.withUnsafeMutableBufferPointer { t.convert(from: 3, count: t.count - 3, into: $0.baseAddress!) }
                Self.check(part, Array(e.bits[3...]), t.name + "[3...]")
            }
        }
    }

    @Test func scalarAndEmptyTensors() throws {
        let store = try WeightStore(directory: Self.root + "/dtypes")
        let scalar = try store.tensor("scalar", shape: [])
        #expect(scalar.count == 1 && scalar.byteCount == 4)
        #expect(scalar.floats() == [Float(0.3)])
        let empty = try store.tensor("empty", shape: [3, 0])
        #expect(empty.count == 0 && empty.byteCount == 0 && empty.floats().isEmpty)
        let ids = try store.tensor("i64", dtypes: [.i64])
        #expect(ids.float(at: 1) == 48)
    }

    @Test func shardedDirectoryLoadsTheRightBytes() throws {
        let expected = try Self.expected("sharded")
        let dir = Self.root + "/sharded"
        var fractions: [Double] = []
        let store = try WeightStore(directory: dir, progress: { fractions.append($0); return true })
        #expect(fractions == [0.5, 1.0])
        #expect(store.files.map(\.path) == [dir + "/model-00001-of-00002.safetensors", dir + "/model-00002-of-00002.safetensors"])
        #expect(store.names == expected.keys.sorted())
        for (name, e) in expected {
            let t = try store.tensor(name, shape: e.shape)
            #expect(t.dtype.rawValue == e.dtype)
            Self.check(t.floats(), e.bits, name)
            // Zero copy: the view points into the mapping of the shard the index names.
            let shard = try #require(store.files.first { $0.path == dir + "/" + (e.file ?? "") })
            #expect(shard.file.contains(t.data), "\(name) lies in \(e.file ?? "?")")
            #expect(shard.file.contains(t.data + (t.byteCount - 1)))
        }
        #expect(store.totalBytes == expected.values.reduce(0) { $0 + $1.bits.count * (DType(rawValue: $1.dtype)?.size ?? 0) })
        #expect(store.bytesByDType[.bf16] == 2 * 2 * 24)
        #expect(store.predominantDType == .bf16)
    }

    @Test func progressCallbackCancels() {
        let error = thrownError { () throws(LlavaError) in
            _ = try WeightStore(directory: Self.root + "/sharded", progress: { _ in false })
        }
        #expect(error?.status == .cancelled)
    }

    @Test func explicitPathsLoadWithoutAnIndex() throws {
        let dir = Self.root + "/sharded"
        let store = try WeightStore(paths: [dir + "/model-00002-of-00002.safetensors", dir + "/model-00001-of-00002.safetensors"])
        #expect(store.count == 4)
        let twice = thrownError { () throws(LlavaError) in
            _ = try WeightStore(paths: [dir + "/model-00001-of-00002.safetensors", dir + "/model-00001-of-00002.safetensors"])
        }
        #expect(twice?.status == .badWeights && twice?.message.contains("stored twice") == true)
        let missing = thrownError { () throws(LlavaError) in _ = try WeightStore(paths: [dir + "/nope.safetensors"]) }
        #expect(missing?.status == .io)
    }

    @Test func tensorLookupReportsNameShapeAndDType() throws {
        let store = try WeightStore(directory: Self.root + "/sharded")
        let missing = thrownError { () throws(LlavaError) in _ = try store.tensor("model.nope") }
        #expect(missing?.status == .missingTensor && missing?.message.contains("'model.nope'") == true)
        let shape = thrownError { () throws(LlavaError) in _ = try store.tensor("lm_head.weight", shape: [4, 6]) }
        #expect(shape?.status == .tensorMismatch && shape?.message.contains("shape [6, 4], expected [4, 6]") == true)
        let dtype = thrownError { () throws(LlavaError) in _ = try store.tensor("lm_head.weight", dtypes: [.f32]) }
        #expect(dtype?.status == .tensorMismatch && dtype?.message.contains("dtype BF16") == true)
    }

    @Test func singleFileIsPreferredOverAnIndex() throws {
        let dir = TestFiles.makeTemporaryDirectory("prefer-single")
        defer { TestFiles.remove(dir) }
        TestFiles.writeSafetensors([("only", .f32, [2])], to: dir + "/model.safetensors")
        TestFiles.write(Array("not json".utf8), to: dir + "/model.safetensors.index.json")
        let store = try WeightStore(directory: dir)
        #expect(store.names == ["only"])
    }

    @Test func shardNamesCannotLeaveTheDirectory() throws {
        for bad in ["../x.safetensors", "/abs.safetensors", "a/b.safetensors", "config.json", ".safetensors",
                    "x.safetensors\u{0}.txt", ""] {
            let json = JSONValue.object([("weight_map", .object([("t", .string(bad))]))])
            let error = thrownError { () throws(LlavaError) in _ = try SafetensorsIndex(json: json, source: "index") }
            #expect(error?.status == .badWeights, "\(bad)")
        }
        let ok = try SafetensorsIndex(json: .object([("weight_map", .object([
            ("a", .string("m-1.safetensors")), ("b", .string("m-2.safetensors")), ("c", .string("m-1.safetensors")),
        ]))]), source: "index")
        #expect(ok.shards == ["m-1.safetensors", "m-2.safetensors"])
        #expect(ok.weightMap.map(\.tensor) == ["a", "b", "c"])
    }
}
