import ArgumentParser
import LlavaUHD

@main
struct LlavaUHDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llavauhd",
        abstract: "Run LLaVA-UHD v2 on the CPU.")
}
