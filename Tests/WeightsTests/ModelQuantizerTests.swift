#if canImport(Glibc)
import Glibc
#endif
import LlavaUHD
import TestSupport
import Testing

/// Makes an empty temporary directory.
func temporaryDirectory() -> String {
    var template = Array("/tmp/luhd-quant-dir-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "cannot create a temporary directory")
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

func removeDirectory(_ path: String) {
    if let d = opendir(path) {
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(d)
    }
    rmdir(path)
}

/// The quantize writer on the tiny coffee-v2-mask7 model: the LLM projections become GGML
/// blocks made by the reference quantizer from the original BF16 values, everything else is
/// bit-identical, and WeightStore reads the result back as QuantizedMatrix.
@Suite struct ModelQuantizerTests {
    static let model = Fixtures.model("coffee-v2-mask7")

    @Test(.enabled(if: fileExists(ModelQuantizerTests.model + "/model.safetensors")),
          arguments: [QuantFormat.q8_0, .q4_0])
    func roundTrip(format: QuantFormat) throws {
        let out = temporaryDirectory()
        defer { removeDirectory(out) }
        let options = ModelQuantizer.Options(format: format, includeEmbeddings: format == .q8_0, includeLMHead: true, threads: 2)
        let report = try ModelQuantizer.quantize(model: Self.model, to: out, options: options)
        let input = try WeightStore(directory: Self.model)
        let output = try WeightStore(directory: out)
        #expect(output.names == input.names)
        // 4 layers × 7 projections, plus lm_head (and the embeddings for Q8_0).
        let expectedCount = input.names.filter { ModelQuantizer.selects($0, options: options) }.count
        #expect(report.quantized.count == expectedCount)
        #expect(expectedCount == (format == .q8_0 ? 2 : 1) + 7 * (input.names.filter { $0.hasSuffix("mlp.down_proj.weight") }.count))
        #expect(!report.quantized.contains { $0.contains("vision_tower") || $0.contains("mm_projector") })
        for name in input.names {
            let a = try #require(input[name]), b = try #require(output[name])
            if report.quantized.contains(name) {
                let q = try #require(try output.quantization(of: name))
                #expect(q.format == format && q.rows == a.shape[0] && q.columns == a.shape[1])
                let m = try output.quantizedMatrix(name, shape: a.shape)
                #expect(b.dtype == .u8 && b.shape == [a.shape[0], m.rowBytes])
                let expected = try QuantizedMatrix.quantize(a.floats(), rows: a.shape[0], columns: a.shape[1], format: format)
                #expect(Array(UnsafeRawBufferPointer(start: m.data, count: m.byteCount))
                    == Array(UnsafeRawBufferPointer(start: expected.data, count: expected.byteCount)), "\(name)")
                // Dequantized within the format's step of the original.
                let err = relativeMaxError(m.dequantized(), a.floats())
                #expect(err < (format == .q8_0 ? 0.01 : 0.15), "\(name): relative error \(err)")
            } else {
                #expect(b.dtype == a.dtype && b.shape == a.shape, "\(name)")
                #expect(Array(UnsafeRawBufferPointer(start: b.data, count: b.byteCount))
                    == Array(UnsafeRawBufferPointer(start: a.data, count: a.byteCount)), "\(name) changed")
                #expect(try output.quantization(of: name) == nil)
            }
        }
        // Dense matrices read through the same call.
        let dense = try output.quantizedMatrix("model.mm_projector.kv_proj.weight")
        #expect(dense.format == .bf16 && dense.rows == 256 && dense.columns == 1024)
        #expect(throws: LlavaError.self) { try output.quantizedMatrix("model.mm_projector.kv_proj.weight", shape: [1024, 256]) }
        // The other files are copied byte for byte.
        #expect(report.copiedFiles.contains("config.json") && report.copiedFiles.contains("tokenizer.model"))
        for name in report.copiedFiles {
            #expect(try readWholeFile(out + "/" + name) == readWholeFile(Self.model + "/" + name), "\(name)")
        }
        #expect(report.bytesOut < report.bytesIn)
    }

    @Test(.enabled(if: fileExists(ModelQuantizerTests.model + "/model.safetensors")))
    func refusesBadRequests() throws {
        let out = temporaryDirectory()
        defer { removeDirectory(out) }
        #expect(throws: LlavaError.self) {
            try ModelQuantizer.quantize(model: Self.model, to: out, options: .init(format: .q4_K))
        }
        let f = fopen(out + "/junk", "w")
        fclose(f)
        let e = #expect(throws: LlavaError.self) { try ModelQuantizer.quantize(model: Self.model, to: out) }
        #expect(e?.status == .invalidArgument)
    }

    /// A U8 tensor whose metadata disagrees with its size, or lacks metadata, is refused.
    @Test func lyingMetadata() throws {
        func file(metadata: (String, String), shape: [Int]) -> String {
            var header = SafetensorsWriter(metadata: [metadata])
            header.add("w", dtype: .u8, shape: shape)
            return temporaryFile(header.header() + [UInt8](repeating: 0, count: header.dataByteCount), suffix: ".safetensors")
        }
        let good = file(metadata: ("luhd.quant.w", "q8_0:2x64"), shape: [2, 68])
        let wrongRows = file(metadata: ("luhd.quant.w", "q8_0:3x64"), shape: [2, 68])
        let garbled = file(metadata: ("luhd.quant.w", "q8_0:2by64"), shape: [2, 68])
        let missing = file(metadata: ("other", "x"), shape: [2, 68])
        defer { for p in [good, wrongRows, garbled, missing] { unlink(p) } }
        let m = try WeightStore(paths: [good]).quantizedMatrix("w")
        #expect(m.format == .q8_0 && m.rows == 2 && m.columns == 64)
        #expect(m.dequantized() == [Float](repeating: 0, count: 128))
        #expect(throws: LlavaError.self) { try WeightStore(paths: [wrongRows]).quantizedMatrix("w") }
        #expect(throws: LlavaError.self) { try WeightStore(paths: [garbled]).quantizedMatrix("w") }
        #expect(throws: LlavaError.self) { try WeightStore(paths: [missing]).quantizedMatrix("w") }
    }
}
