import ArgumentParser
import LlavaUHD

struct LlavaUHDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llavauhd",
        abstract: "Run LLaVA-UHD v2 on the CPU.",
        subcommands: [QuantizeCommand.self])
}

LlavaUHDCommand.main()
