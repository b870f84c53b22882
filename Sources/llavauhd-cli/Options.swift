import ArgumentParser
import LlavaUHD

/// `--model`, `--template`, `--threads`, `--precision`: which model to load and how.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The model: a LLaVA-UHD directory (config.json, *.safetensors, tokenizer files), or a text-only LLM "
            + "(a LLaMA/Qwen2 .gguf file, or a directory holding one or a LlamaForCausalLM/Qwen2ForCausalLM).",
        valueName: "path"))
    var model: String

    @Option(name: .long, help: ArgumentHelp(
        "Chat template of a text-only LLM when its chat_template is not recognised: "
            + ChatTemplateKind.allCases.map(\.rawValue).joined(separator: ", ") + ".", valueName: "name"))
    var template: String?

    @Option(name: .long, help: "Compute threads (default: every online CPU).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp(
        "exact: float32 products (the default). fast: the fastest reduced-precision kernels the CPU has, never "
            + "slower than exact: int8 products (a Q8_0 copy of the weights made at load) in the vision tower on "
            + "AVX-512 VNNI CPUs; bf16 products against BF16 weights in the vision tower and the LLM prefill on "
            + "AVX512_BF16 CPUs where they measure faster (PyTorch bf16 matmul precision).", valueName: "exact|fast"))
    var precision: String = Precision.exact.name

    /// Loads the model, showing the load progress on standard error; `caches` sets its shared
    /// caches and decode batching (else the library's defaults).
    func load(_ status: StatusReporter, caches: ModelCacheFlags? = nil) throws(LlavaError) -> (model: LlavaModel, seconds: Double) {
        if let threads, !(1...1024).contains(threads) {
            throw LlavaError(.invalidArgument, "--threads \(threads) must be in 1...1024")
        }
        guard let precision = Precision(name: precision) else {
            throw LlavaError(.invalidArgument, "--precision \(self.precision) is not one of exact, fast")
        }
        let kind = try template.map { (name) throws(LlavaError) in try ChatTemplateKind.named(name, option: "--template") }
        let start = monotonicSeconds()
        var options = LlavaModel.LoadOptions(threads: threads ?? ComputeContext.defaultThreads,
                                             progress: status.loadProgress(directory: model),
                                             matrixArithmetic: precision.matrixArithmetic(),
                                             visionArithmetic: precision.visionArithmetic(), chatTemplate: kind)
        if let caches {  // checked when parsed
            options.imageCacheBytes = caches.imageCacheBytes
            options.prefixCacheBytes = caches.prefixCacheBytes
            options.maxDecodeBatch = caches.maxDecodeBatch
        }
        let loaded = try LlavaModel(path: model, options: options)
        let seconds = monotonicSeconds() - start
        status.loadFinished(seconds: seconds, textOnly: !loaded.hasVision)
        return (loaded, seconds)
    }
}

/// `--image-cache-bytes`, `--prefix-cache-bytes` and `--max-decode-batch`: what the model shares
/// between its sessions (`LlavaModel.LoadOptions`; `luhd_model_params` in C), for commands that
/// run several sessions of one model (`serve`).
struct ModelCacheFlags: ParsableArguments {
    @Option(name: .customLong("image-cache-bytes"), help: ArgumentHelp(
        "Bytes of encoded images the model keeps for all sessions (a second request with the same image skips the "
            + "vision stage); 0 = off; the default is 256 MiB.", valueName: "bytes"))
    var imageCacheBytes = LlavaModel.LoadOptions.defaultImageCacheBytes

    @Option(name: .customLong("prefix-cache-bytes"), help: ArgumentHelp(
        "Bytes of KV rows the model keeps for all sessions: a prompt that starts as an earlier one did (same system "
            + "prompt, same images) reuses its rows instead of recomputing them (results equal to float rounding, greedy "
            + "answers tested equal). 0 = off; \(LlavaModel.LoadOptions.suggestedPrefixCacheBytes) (512 MiB) suits a "
            + "server.", valueName: "bytes"))
    var prefixCacheBytes = LlavaModel.LoadOptions.defaultPrefixCacheBytes

    @Option(name: .customLong("max-decode-batch"), help: ArgumentHelp(
        "Most sessions whose decode steps share one pass over the weights when they decode at the same time (each "
            + "answer stays the one it gets alone); 1 = off, 1...\(LlavaModel.LoadOptions.largestMaxDecodeBatch).",
        valueName: "n"))
    var maxDecodeBatch = LlavaModel.LoadOptions.defaultMaxDecodeBatch

    func validate() throws {
        guard imageCacheBytes >= 0, prefixCacheBytes >= 0 else {
            throw ValidationError("--image-cache-bytes and --prefix-cache-bytes must be at least 0")
        }
        let batches = 1...LlavaModel.LoadOptions.largestMaxDecodeBatch
        guard batches.contains(maxDecodeBatch) else {
            throw ValidationError("--max-decode-batch \(maxDecodeBatch) is outside \(batches.lowerBound)...\(batches.upperBound)")
        }
    }
}

/// `--max-slices` and `--preresize`: how images are sliced (upstream's eval settings by default).
struct SlicingFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Upscale-only pre-resize of the image's long side before slicing; 0 = off. Upstream's eval uses 1536 "
            + "when the image folder's path contains 'textvqa', 0 when it contains 'mme' or 'ai2d', else 1024.",
        valueName: "pixels"))
    var preresize: Int = 1024

    @Option(name: .customLong("max-slices"), help: "Largest number of slices (upstream's eval uses 9).")
    var maxSlices: Int = 9

    var options: SlicingOptions { SlicingOptions(preresizeLongSide: preresize, maxSlices: maxSlices) }
}

/// The options of a conversation: context, system prompt, generation and sampling.
struct GenerationFlags: ParsableArguments {
    @Option(name: .customLong("ctx"), help: "Context length in positions; 0 = min(4096, the model's maximum).")
    var contextLength: Int = 0

    @Option(name: .customLong("max-new-tokens"), help: "Most tokens in an answer (default: 512; eval: 128, as upstream).")
    var maxNewTokens: Int?

    @Option(name: .long, help: "Sampling temperature; 0 = greedy (upstream's eval setting).")
    var temperature: Float = 0

    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens; 0 = off.")
    var topK: Int = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold; 1 = off.")
    var topP: Float = 1

    @Option(name: .customLong("min-p"), help: "Drop tokens below this fraction of the top probability; 0 = off.")
    var minP: Float = 0

    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (Hugging Face rule); 1 = off.")
    var repeatPenalty: Float = 1

    @Option(name: .customLong("repeat-last-n"), help: "How many recent tokens the penalty looks at; 0 = all.")
    var repeatLastN: Int = 0

    @Option(name: .long, help: "Seed of the sampling random stream.")
    var seed: UInt64 = 0

    @Option(name: .customLong("stop"), help: ArgumentHelp("Stop the answer at this text (repeatable).", valueName: "text"))
    var stopStrings: [String] = []

    @Option(name: .customLong("system"), help: ArgumentHelp("The system prompt (default: the chat template's).",
                                                            valueName: "prompt"))
    var systemPrompt: String?

    /// The session options, with the given slicing and the context length and system prompt.
    func sessionOptions(slicing: SlicingOptions) -> ChatSession.Options {
        var options = ChatSession.Options()
        options.contextLength = contextLength
        options.systemPrompt = systemPrompt
        options.slicing = slicing
        return options
    }

    /// The per-answer parameters; `defaultMaxNewTokens` applies when `--max-new-tokens` is not given.
    func parameters(defaultMaxNewTokens: Int) throws(LlavaError) -> ChatParameters {
        let maxNew = maxNewTokens ?? defaultMaxNewTokens
        guard maxNew >= 1 else { throw LlavaError(.invalidArgument, "--max-new-tokens \(maxNew) must be at least 1") }
        let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                          repetitionPenalty: repeatPenalty, penaltyWindow: repeatLastN, seed: seed)
        try sampling.validate()
        return ChatParameters(generation: GenerationParameters(maxNewTokens: maxNew, sampling: sampling),
                              stopStrings: stopStrings)
    }
}

/// `--quiet`.
struct OutputFlags: ParsableArguments {
    @Flag(name: .long, help: "No progress or timings on standard error (errors are still shown).")
    var quiet = false
}
