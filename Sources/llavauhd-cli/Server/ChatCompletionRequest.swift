import LlavaUHD

/// A `/v1/chat/completions` request body, checked: the conversation as chat turns with
/// `<image>` placeholders where the `image_url` parts were, and the answer's parameters.
///
/// Accepted (OpenAI's names): `messages` (roles `system`/`developer` first, then alternating
/// `user` and `assistant`, ending with `user`; `content` a string or an array of `text` and
/// `image_url` parts), `stream`, `stream_options.include_usage`, `max_tokens` (or
/// `max_completion_tokens`), `temperature` (absent: 0, greedy, as upstream's eval), `top_p`,
/// `seed`, `stop` (a string or up to 4), `n` (1 only), `model` (any name: the server has one
/// model). Other OpenAI fields are ignored, as llama-server does.
struct ChatCompletionRequest: Sendable {
    /// The system prompt, or nil for the chat template's own.
    var systemPrompt: String?
    /// Earlier turns (alternating user and assistant), then the question.
    var history: [ChatMessage]
    var question: String
    /// The image URLs of `history`'s user turns, in order, then those of the question.
    var historyImageURLs: [String]
    var questionImageURLs: [String]
    var stream: Bool
    var includeUsage: Bool
    var parameters: ChatParameters

    /// Most stop strings, as OpenAI.
    static let maxStopStrings = 4

    init(json: JSONValue, defaultMaxTokens: Int) throws(APIError) {
        guard json.objectValue != nil else { throw .invalid("the request body must be a JSON object") }
        guard let messages = json["messages"]?.arrayValue, !messages.isEmpty else {
            throw .invalid("'messages' must be a non-empty array", param: "messages")
        }
        if let n = json["n"], !n.isNull, n.intValue != 1 {
            throw .invalid("only n = 1 is supported", param: "n")
        }
        stream = try Self.bool(json["stream"], "stream") ?? false
        includeUsage = try Self.bool(json["stream_options"]?["include_usage"], "stream_options.include_usage") ?? false

        // The conversation.
        var systemParts: [String] = []
        var turns: [(message: ChatMessage, images: [String])] = []
        for (i, message) in messages.enumerated() {
            let param = "messages[\(i)]"
            guard let role = message["role"]?.stringValue else { throw .invalid("\(param).role must be a string", param: param) }
            let (text, images) = try Self.content(message["content"], param: param + ".content")
            switch role {
            case "system", "developer":
                guard turns.isEmpty else { throw .invalid("\(param): system messages must come first", param: param) }
                guard images.isEmpty else { throw .invalid("\(param): a system message cannot hold images", param: param) }
                systemParts.append(text)
            case "user", "assistant":
                let expected = turns.count % 2 == 0 ? "user" : "assistant"
                guard role == expected else {
                    throw .invalid("\(param) should be a '\(expected)' message: user and assistant turns alternate, "
                                   + "starting with the user", param: param)
                }
                guard role == "user" || images.isEmpty else {
                    throw .invalid("\(param): an assistant message cannot hold images", param: param)
                }
                turns.append((role == "user" ? .user(text, images: images.count, imagesInText: !images.isEmpty) : .assistant(text), images))
            default:
                throw .invalid("\(param).role '\(role)' is not supported (system, developer, user, assistant)", param: param)
            }
        }
        guard let last = turns.popLast(), last.message.role == .user else {
            throw .invalid("the last message must be a 'user' message", param: "messages")
        }
        systemPrompt = systemParts.isEmpty ? nil : systemParts.joined(separator: "\n")
        history = turns.map(\.message)
        historyImageURLs = turns.flatMap(\.images)
        question = last.message.text
        questionImageURLs = last.images

        // The answer's parameters.
        var maxTokens = defaultMaxTokens
        for key in ["max_tokens", "max_completion_tokens"] {
            guard let value = json[key], !value.isNull else { continue }
            guard let v = value.intValue, v >= 1 else { throw .invalid("'\(key)' must be an integer >= 1", param: key) }
            maxTokens = v
        }
        let temperature = try Self.number(json["temperature"], "temperature", in: 0...2) ?? 0
        let topP = try Self.number(json["top_p"], "top_p", in: 0...1) ?? 1
        guard topP > 0 else { throw .invalid("'top_p' must be greater than 0", param: "top_p") }
        var seed: UInt64 = 0
        if let value = json["seed"], !value.isNull {
            guard let s = value.intValue else { throw .invalid("'seed' must be an integer", param: "seed") }
            seed = UInt64(bitPattern: Int64(s))
        }
        var stops: [String] = []
        if let value = json["stop"], !value.isNull {
            if let s = value.stringValue {
                stops = [s]
            } else if let items = value.arrayValue, items.count <= Self.maxStopStrings,
                      case let strings = items.compactMap(\.stringValue), strings.count == items.count {
                stops = strings
            } else {
                throw .invalid("'stop' must be a string or an array of at most \(Self.maxStopStrings) strings", param: "stop")
            }
            guard !stops.contains("") else { throw .invalid("'stop' strings must not be empty", param: "stop") }
        }
        let sampling = SamplingParameters(temperature: Float(temperature), topP: Float(topP), seed: seed)
        do { try sampling.validate() } catch { throw .invalid(error.message) }
        parameters = ChatParameters(generation: GenerationParameters(maxNewTokens: maxTokens, sampling: sampling),
                                    stopStrings: stops)
    }

    /// A message's text with `<image>` where its image parts were (parts joined by newlines, so
    /// `[image, text]` is upstream's `"<image>\n" + question`), and the image URLs.
    static func content(_ value: JSONValue?, param: String) throws(APIError) -> (String, [String]) {
        if let text = value?.stringValue { return (try checked(text, param: param), []) }
        guard let parts = value?.arrayValue else {
            throw .invalid("\(param) must be a string or an array of content parts", param: param)
        }
        var pieces: [String] = []
        var images: [String] = []
        for (i, part) in parts.enumerated() {
            let p = "\(param)[\(i)]"
            switch part["type"]?.stringValue {
            case "text":
                guard let text = part["text"]?.stringValue else { throw .invalid("\(p).text must be a string", param: p) }
                pieces.append(try checked(text, param: p))
            case "image_url":
                guard let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue else {
                    throw .invalid("\(p).image_url.url must be a string", param: p)
                }
                pieces.append(ChatTemplate.imagePlaceholder)
                images.append(url)
            default:
                throw .invalid("\(p).type must be 'text' or 'image_url'", param: p)
            }
        }
        return (pieces.joined(separator: "\n"), images)
    }

    /// Text from the client, which may not hold the image placeholder itself.
    static func checked(_ text: String, param: String) throws(APIError) -> String {
        guard !text.contains(ChatTemplate.imagePlaceholder) else {
            throw .invalid("\(param) contains '\(ChatTemplate.imagePlaceholder)'; send images as image_url parts", param: param)
        }
        return text
    }

    static func bool(_ value: JSONValue?, _ name: String) throws(APIError) -> Bool? {
        guard let value, !value.isNull else { return nil }
        guard let b = value.boolValue else { throw .invalid("'\(name)' must be true or false", param: name) }
        return b
    }

    static func number(_ value: JSONValue?, _ name: String, in range: ClosedRange<Double>) throws(APIError) -> Double? {
        guard let value, !value.isNull else { return nil }
        guard let d = value.doubleValue, range.contains(d) else {
            throw .invalid("'\(name)' must be a number in \(range.lowerBound)...\(range.upperBound)", param: name)
        }
        return d
    }
}
