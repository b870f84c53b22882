import ArgumentParser
import LlavaUHD

/// The options of every command that answers questions (`run`, `chat`, `eval`) after the
/// model and images: slicing, generation and output, and the setup they all start with.
struct AnswerOptions: ParsableArguments {
    @OptionGroup var slicing: SlicingFlags
    @OptionGroup var generation: GenerationFlags
    @OptionGroup var output: OutputFlags

    /// Installs the Ctrl-C handler and checks every option that needs no model: gives the
    /// status reporter, the per-answer parameters (`defaultMaxNewTokens` when
    /// `--max-new-tokens` is not given) and the session options with the slicing validated.
    func start(defaultMaxNewTokens: Int) throws(LlavaError)
        -> (status: StatusReporter, parameters: ChatParameters, options: ChatSession.Options) {
        InterruptHandler.shared.install()
        let status = StatusReporter(quiet: output.quiet)
        let parameters = try generation.parameters(defaultMaxNewTokens: defaultMaxNewTokens)
        let options = generation.sessionOptions(slicing: slicing.options)
        try options.slicing.validate()
        return (status, parameters, options)
    }
}
