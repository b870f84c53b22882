import ArgumentParser
import LlavaUHD

/// `llavauhd quantize MODEL_DIR OUTPUT_DIR [--format q8_0|q4_0] [--lm-head] [--embeddings]`:
/// writes a copy of a safetensors model directory whose LLM projection weights are block-quantized
/// (see `ModelQuantizer` for the format: U8 tensors of GGML blocks, `luhd.quant.<name>` metadata).
/// The copy loads like any model directory; its decoder runs the quantized kernels.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize a model directory's LLM weights (Q8_0 or Q4_0) into a new directory.")

    @Argument(help: "The model directory to read (config.json, safetensors, tokenizer files).")
    var model: String

    @Argument(help: "The directory to write (created; must not exist or be empty).")
    var output: String

    @Option(help: "Block format: q8_0 (8.5 bits per weight) or q4_0 (4.5 bits per weight).")
    var format: String = "q8_0"

    @Flag(name: .customLong("lm-head"), help: "Also quantize lm_head.weight.")
    var lmHead = false

    @Flag(help: "Also quantize model.embed_tokens.weight.")
    var embeddings = false

    @Option(help: "Threads (default: all CPUs).")
    var threads: Int?

    func run() throws {
        guard let f = QuantFormat(name: format), f == .q8_0 || f == .q4_0 else {
            throw ValidationError("--format must be q8_0 or q4_0, not '\(format)'")
        }
        let options = ModelQuantizer.Options(format: f, includeEmbeddings: embeddings, includeLMHead: lmHead,
                                             threads: threads ?? ComputeContext.defaultThreads)
        var lastPercent = -1
        let report = try ModelQuantizer.quantize(model: model, to: output, options: options) { fraction in
            let percent = Int(fraction * 100)
            if percent / 10 != lastPercent / 10 { print("quantize: \(percent) %") }
            lastPercent = percent
            return true
        }
        print("quantize: \(report.quantized.count) tensors as \(f.rawValue); \(report.bytesIn / 1_000_000) MB → "
              + "\(report.bytesOut / 1_000_000) MB of tensor data; copied \(report.copiedFiles.joined(separator: ", "))")
    }
}
