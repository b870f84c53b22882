#if canImport(Glibc)
import Glibc
#endif
import CLlavaUHD

/// Writes a quantized copy of a model directory (the library side of `llavauhd quantize`).
///
/// ## The format (version 1)
/// The output directory has the same files as the input. Every file that is not a weight file
/// (config.json, tokenizer files, generation_config.json, ...) is copied byte for byte. The
/// weight files keep their names (`model.safetensors`, or the shards named by
/// `model.safetensors.index.json`, which is rewritten with the same `weight_map` and the new
/// `metadata.total_size`) and every tensor keeps its name and its shard. Tensors are stored
/// contiguously in their original order, so the files stay valid safetensors for any reader.
///
/// The LLM's 2-D projection weights — `model.layers.N.self_attn.{q,k,v,o}_proj.weight` and
/// `model.layers.N.mlp.{gate,up,down}_proj.weight`, and optionally `lm_head.weight` and
/// `model.embed_tokens.weight` — whose row length is a multiple of 32 become Q8_0 or Q4_0:
/// - the tensor's dtype becomes `U8` and its shape `[rows, bytes_per_row]`, where the bytes of
///   each row are GGML's blocks for that row (`QuantFormat`: Q8_0 is 34 bytes per 32 weights,
///   Q4_0 18 bytes per 32), made by GGML's reference quantizer (round to nearest) from the
///   original values widened to f32;
/// - the file's `__metadata__` gets `"luhd.quant.<tensor name>": "<format>:<rows>x<columns>"`
///   with the format in lower case (`"q8_0:4096x11008"`): the original shape;
/// - and `"luhd.quant_format_version": "1"`.
/// Existing `__metadata__` entries are kept. Everything else — the vision tower, the projector,
/// norms, biases — is copied bit for bit with its dtype and shape. Tensors holding NaN or
/// infinity are refused (`.badWeights`) rather than quantized to garbage.
///
/// Reading: `WeightStore.quantizedMatrix(_:)` turns such a tensor (or any dense F32/F16/BF16
/// matrix) into a `QuantizedMatrix` view of the mapping.
public enum ModelQuantizer {
    /// The metadata key prefix that marks a quantized tensor.
    public static let metadataPrefix = "luhd.quant."
    /// The metadata key that gives the format version.
    public static let versionKey = "luhd.quant_format_version"

    public struct Options: Sendable {
        /// Q8_0 or Q4_0.
        public var format: QuantFormat
        /// Also quantize `model.embed_tokens.weight` (row lookups then dequantize one row).
        public var includeEmbeddings: Bool
        /// Also quantize `lm_head.weight`.
        public var includeLMHead: Bool
        /// Threads used to quantize (results do not depend on it).
        public var threads: Int

        public init(format: QuantFormat = .q8_0, includeEmbeddings: Bool = false, includeLMHead: Bool = false,
                    threads: Int = ComputeContext.defaultThreads) {
            self.format = format
            self.includeEmbeddings = includeEmbeddings
            self.includeLMHead = includeLMHead
            self.threads = max(1, threads)
        }
    }

    /// What `quantize` did.
    public struct Report: Sendable {
        /// The tensors stored quantized, in file order.
        public var quantized: [String] = []
        /// Bytes of tensor data read and written.
        public var bytesIn = 0
        public var bytesOut = 0
        /// The non-weight files copied.
        public var copiedFiles: [String] = []
    }

    /// True when `name` is one of the LLM projection weights that `options` quantizes.
    public static func selects(_ name: String, options: Options) -> Bool {
        typealias Source = SafetensorsDecoderSource
        if name == Source.name(.outputHead, layer: 0) { return options.includeLMHead }
        if name == Source.name(.embedTokens, layer: 0) { return options.includeEmbeddings }
        // "model.layers.<N>.<rest>": the layer number, then the projections' names for that layer.
        let prefix = "model.layers."
        guard name.hasPrefix(prefix), let layer = Int(name.dropFirst(prefix.count).prefix { $0 != "." }) else { return false }
        return DecoderTensor.layerProjections.contains { Source.name($0, layer: layer) == name }
    }

    /// Quantizes the model in `directory` into `output` (created; it must not exist or be
    /// empty). `progress` gets the fraction of tensor bytes done and may cancel (`.cancelled`).
    /// Throws `.invalidArgument` for a format other than Q8_0/Q4_0 or a non-empty output,
    /// `.io` for read/write failures, and the loading errors of `WeightStore`.
    @discardableResult
    public static func quantize(model directory: String, to output: String, options: Options = Options(),
                                progress: ((Double) -> Bool)? = nil) throws(LlavaError) -> Report {
        guard options.format == .q8_0 || options.format == .q4_0 else {
            throw LlavaError(.invalidArgument, "quantize: format must be Q8_0 or Q4_0, not \(options.format.rawValue)")
        }
        let store = try WeightStore(directory: directory)
        let indexPath = directory + "/model.safetensors.index.json"
        let sharded = fileExists(indexPath)
        try prepareOutput(output)

        var report = Report()
        let totalBytes = max(1, store.totalBytes)
        var done = 0
        var shardSizes: [Int] = []
        for file in store.files {
            let name = baseName(file.path)
            let size = try writeShard(file, to: output + "/" + name, options: options, report: &report) { bytes throws(LlavaError) in
                done += bytes
                if let progress, !progress(Double(done) / Double(totalBytes)) {
                    throw LlavaError(.cancelled, "quantize cancelled by the progress callback")
                }
            }
            shardSizes.append(size)
        }
        if sharded {
            let index = try SafetensorsIndex(path: indexPath)
            var json = "{\n  \"metadata\": {\"total_size\": \(shardSizes.reduce(0, +))},\n  \"weight_map\": {\n"
            json += index.weightMap.map { "    \(JSONValue.stringLiteral($0.tensor)): \(JSONValue.stringLiteral($0.shard))" }.joined(separator: ",\n")
            json += "\n  }\n}\n"
            try writeFile(output + "/model.safetensors.index.json", Array(json.utf8))
        }
        let weightFiles = Set(store.files.map { baseName($0.path) } + ["model.safetensors.index.json"])
        for name in try listDirectory(directory) where !weightFiles.contains(name) {
            let path = directory + "/" + name
            guard fileExists(path) else { continue }   // subdirectories and special files are not copied
            let f = try MappedFile(path: path)
            try writeFile(output + "/" + name, f.bytes)
            report.copiedFiles.append(name)
        }
        return report
    }

    /// Writes one safetensors file: quantized tensors as U8 blocks, the rest copied. Returns the
    /// bytes of tensor data written.
    private static func writeShard(_ file: SafetensorsFile, to path: String, options: Options, report: inout Report,
                                   advance: (Int) throws(LlavaError) -> Void) throws(LlavaError) -> Int {
        struct Plan { let view: TensorView; let quantized: Bool; let rowBytes: Int; let bytes: Int }
        var plans: [Plan] = []
        for t in file.tensors {
            let q = selects(t.name, options: options) && t.shape.count == 2 && DType.floatWeights.contains(t.dtype)
                && t.shape[0] > 0 && options.format.rowBytes(columns: t.shape[1]) != nil
            if q, let rb = options.format.rowBytes(columns: t.shape[1]) {
                plans.append(Plan(view: t, quantized: true, rowBytes: rb, bytes: t.shape[0] * rb))
            } else {
                plans.append(Plan(view: t, quantized: false, rowBytes: 0, bytes: t.byteCount))
            }
        }
        // Header: the original __metadata__, then ours, then the tensors in file order.
        var metadata = file.metadata.filter { !$0.0.hasPrefix(metadataPrefix) && $0.0 != versionKey }
        if plans.contains(where: \.quantized) {
            metadata.append((versionKey, "1"))
            for p in plans where p.quantized {
                metadata.append((metadataPrefix + p.view.name,
                                 "\(options.format.lowercaseName):\(p.view.shape[0])x\(p.view.shape[1])"))
            }
        }
        var header = SafetensorsWriter(metadata: metadata)
        for p in plans {
            header.add(p.view.name, dtype: p.quantized ? .u8 : p.view.dtype,
                       shape: p.quantized ? [p.view.shape[0], p.rowBytes] : p.view.shape, byteCount: p.bytes)
        }
        let offset = header.dataByteCount

        let out = try OutputFile(path: path)
        try out.write(header.header())
        for p in plans {
            if p.quantized {
                try writeQuantized(p.view, rowBytes: p.rowBytes, format: options.format, threads: options.threads, to: out)
                report.quantized.append(p.view.name)
            } else {
                try out.write(UnsafeRawBufferPointer(start: p.view.data, count: p.bytes))
            }
            report.bytesIn += p.view.byteCount
            report.bytesOut += p.bytes
            try advance(p.view.byteCount)
        }
        try out.close()
        return offset
    }

    /// Quantizes a 2-D float tensor row by row, 64 rows at a time split over threads.
    private static func writeQuantized(_ t: TensorView, rowBytes: Int, format: QuantFormat, threads: Int,
                                       to out: OutputFile) throws(LlavaError) {
        let rows = t.shape[0], cols = t.shape[1]
        let chunk = 64
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: chunk * cols)
        let blocks = UnsafeMutableRawPointer.allocate(byteCount: chunk * rowBytes, alignment: 64)
        defer { floats.deallocate(); blocks.deallocate() }
        let f = SendablePointer(floats), b = SendablePointer(blocks.assumingMemoryBound(to: UInt8.self))
        var r0 = 0
        while r0 < rows {
            let n = min(chunk, rows - r0)
            var finite = [Bool](repeating: true, count: n)
            finite.withUnsafeMutableBufferPointer { fin in
                let ok = SendablePointer(fin.baseAddress!)
                parallelFor(n, threads: threads) { i in
                    let src = f.p + i * cols
                    t.convert(from: (r0 + i) * cols, count: cols, into: src)
                    var allFinite = true
                    for k in 0..<cols where !src[k].isFinite { allFinite = false; break }
                    ok.p[i] = allFinite
                    if format == .q8_0 {
                        luhd_quant_quantize_q8_0(src, cols, b.p + i * rowBytes)
                    } else {
                        luhd_quant_quantize_q4_0(src, cols, b.p + i * rowBytes)
                    }
                }
            }
            if let bad = finite.firstIndex(of: false) {
                throw LlavaError(.badWeights, "tensor '\(t.name)' row \(r0 + bad) holds NaN or infinity; refusing to quantize it")
            }
            try out.write(UnsafeRawBufferPointer(start: blocks, count: n * rowBytes))
            r0 += n
        }
    }

    private static func prepareOutput(_ output: String) throws(LlavaError) {
        if mkdir(output, 0o755) != 0 {
            guard errno == EEXIST else {
                throw LlavaError(.io, "cannot create '\(output)': \(String(cString: strerror(errno)))")
            }
            guard try listDirectory(output).isEmpty else {
                throw LlavaError(.invalidArgument, "output directory '\(output)' is not empty")
            }
        }
    }
}
