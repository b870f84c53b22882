import ArgumentParser
import LlavaUHD
#if canImport(Glibc)
import Glibc
#endif

/// `llavauhd`: LLaVA-UHD v2 on the CPU from the command line.
@main
struct LlavaUHDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llavauhd",
        abstract: "Run LLaVA-UHD v2 on the CPU.",
        discussion: """
            A model is a checkpoint directory as released (config.json, *.safetensors, \
            tokenizer files), e.g. YipengZhang/LLaVA-UHD-v2.

            Errors are one line on standard error, 'llavauhd: <status>: <message>', and the exit \
            code says what kind: 64 bad argument, 65 bad model directory, 66 file not readable, \
            67 bad image, 68 context full, 130 interrupted, 1 anything else.
            """,
        subcommands: [RunCommand.self, ChatCommand.self, PlanCommand.self, EvalCommand.self, BenchCommand.self,
                      QuantizeCommand.self, ServeCommand.self])

    /// Parses the command line and runs the subcommand; a library error becomes one line on
    /// standard error and its class's exit code, never a trace.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as LlavaError {
            Console.err(error.commandLine)
            Glibc.exit(ExitCode(error.status).rawValue)
        } catch {
            exit(withError: error)
        }
    }
}
