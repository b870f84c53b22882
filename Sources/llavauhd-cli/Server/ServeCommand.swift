import ArgumentParser
import Hummingbird
import LlavaUHD

/// `llavauhd serve`: an OpenAI-compatible HTTP server for one model.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over HTTP with OpenAI's chat completions API.",
        discussion: """
            Endpoints: POST /v1/chat/completions (text and image_url parts; data: URLs, and local \
            files under --image-dir; streaming with "stream": true), GET /v1/models, GET /health. \
            Errors are JSON in OpenAI's shape. Up to --parallel requests are answered at once, \
            each by a session of its own; up to --queue more wait, further ones get 503. Requests \
            share the model's image cache (--image-cache-bytes) and, with --prefix-cache-bytes, its \
            prefix cache (a prompt that starts as an earlier request's did, on any session, reuses \
            its rows); a session keeps its context between requests, so a conversation resent with \
            one more question recomputes only the new turn; sessions decoding at the same time \
            share each pass over the weights (--max-decode-batch). Progress and timings of every \
            request go to standard error.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var caches: ModelCacheFlags
    @OptionGroup var slicing: SlicingFlags

    @Option(name: .long, help: "Address to listen on (default: loopback only).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on; 0 picks a free one (printed at start).")
    var port = 8080

    @Option(name: .long, help: "The model id clients see (default: the model directory's name).")
    var alias: String?

    @Option(name: .long, help: "Sessions answering at once (each with its own context).")
    var parallel = 1

    @Option(name: .long, help: "Requests waiting for a session before further ones get 503.")
    var queue = 16

    @Option(name: .customLong("ctx"), help: "Context length of each session in positions; 0 = min(4096, the model's maximum).")
    var contextLength = 0

    @Option(name: .customLong("max-tokens"), help: "max_tokens of a request that gives none.")
    var maxTokens = 512

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body (413 above).")
    var maxBodyBytes = 32 << 20

    @Option(name: .customLong("max-images"), help: "Most images in one request, earlier turns included.")
    var maxImages = 8

    @Option(name: .customLong("max-image-pixels"), help: "Largest width x height of one image.")
    var maxImagePixels = 50_000_000

    @Option(name: .long, help: ArgumentHelp("Seconds a request may take, queueing included (503 while queued, 408 after).",
                                            valueName: "seconds"))
    var timeout: Double = 600

    @Option(name: .customLong("image-dir"), help: ArgumentHelp(
        "Also accept images as absolute paths or file:// URLs of files under this folder (default: data: URLs only).",
        valueName: "dir"))
    var imageDirectory: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is outside 0...65535") }
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1") }
        guard queue >= 0 else { throw ValidationError("--queue must not be negative") }
        guard maxTokens >= 1, maxBodyBytes >= 1, maxImages >= 0, maxImagePixels >= 1 else {
            throw ValidationError("--max-tokens, --max-body-bytes and --max-image-pixels must be at least 1, --max-images at least 0")
        }
        // A Duration holds at most about 1.7e20 seconds: a larger --timeout would trap when a
        // request arms its deadline.
        guard timeout > 0, timeout <= Self.maxTimeoutSeconds else {
            throw ValidationError("--timeout must be a positive number of seconds, at most \(Int(Self.maxTimeoutSeconds))")
        }
    }

    func run() async throws {
        var options = ChatSession.Options()
        options.contextLength = contextLength
        options.slicing = slicing.options
        try options.slicing.validate()
        let images = try ImageSource(imageDirectory: imageDirectory, maxPixels: maxImagePixels)
        let (model, _) = try modelOptions.load(StatusReporter(quiet: false), caches: caches)
        _ = try ChatSession(model: model, options: options)  // the context length and options are valid
        let name = alias ?? Self.lastComponent(modelOptions.model)
        let limits = ServerLimits(maxBodyBytes: maxBodyBytes, maxImages: maxImages, maxImagePixels: maxImagePixels,
                                  timeoutSeconds: timeout, defaultMaxTokens: maxTokens)
        let service = CompletionService(pool: SessionPool(model: model, size: parallel, queueLimit: queue, options: options),
                                        modelID: name, limits: limits, images: images)
        let router = Router()
        service.addRoutes(to: router)
        let (host, parallel, caches) = (host, parallel, caches)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "llavauhd"),
                              onServerRunning: { channel in
                                  ServerLog.line("", "serving \(name) on http://\(host):\(channel.localAddress?.port ?? 0) "
                                                 + "(\(parallel) session(s), \(model.threads) threads, image cache "
                                                 + "\(caches.imageCacheBytes) bytes, prefix cache \(caches.prefixCacheBytes) bytes, "
                                                 + "decode batch \(caches.maxDecodeBatch))")
                              })
        try await app.runService()
    }

    /// The longest --timeout (about 31 years).
    static let maxTimeoutSeconds = 1e9

    /// The last path component of a directory, without trailing slashes.
    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
