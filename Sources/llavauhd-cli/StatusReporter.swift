import LlavaUHD
import Synchronization

/// Progress and timings on standard error. On a terminal the progress is one status line,
/// rewritten in place and cleared before the answer starts; otherwise each step is a line.
/// Silent with `--quiet`.
final class StatusReporter: Sendable {
    let quiet: Bool
    let terminal: Bool
    /// Whether a status line is on screen (terminal only), and the last load percentage shown.
    private let state = Mutex<(lineShown: Bool, percent: Int)>((false, -1))

    init(quiet: Bool, terminal: Bool = Console.stderrIsTerminal) {
        self.quiet = quiet
        self.terminal = terminal
    }

    /// Shows `text` as the current status: rewrites the status line on a terminal, else prints
    /// a line.
    func status(_ text: String) {
        guard !quiet else { return }
        if terminal {
            state.withLock { $0.lineShown = true }
            Console.err("\r\u{1B}[K" + text)
        } else {
            Console.err(text + "\n")
        }
    }

    /// Removes the status line (before the answer or a message is written).
    func clear() {
        guard !quiet, terminal else { return }
        let shown = state.withLock { s in
            defer { s.lineShown = false }
            return s.lineShown
        }
        if shown { Console.err("\r\u{1B}[K") }
    }

    /// A line that stays (a summary, a note).
    func line(_ text: String) {
        guard !quiet else { return }
        clear()
        Console.err(text + "\n")
    }

    // MARK: - Loading

    /// The model-load progress callback: the percentage, shown on a terminal as it grows and
    /// otherwise in steps of 10 on one line.
    func loadProgress(directory: String) -> (@Sendable (Double) -> Bool)? {
        guard !quiet else { return nil }
        let terminal = self.terminal
        return { [self] fraction in
            let percent = Int((max(0, min(1, fraction)) * 100).rounded(.down))
            let step = terminal ? percent : percent / 10 * 10
            let previous = state.withLock { s in
                defer { s.percent = max(s.percent, step) }
                return s.percent
            }
            guard step > previous else { return true }
            if terminal {
                status("loading \(directory): \(step)%")
            } else if previous < 0 {
                Console.err("loading \(directory): \(step)%")
            } else {
                Console.err(" \(step)%")
            }
            return true
        }
    }

    /// `textOnly`: the model is a text-only LLM (no vision tower), which the line says.
    func loadFinished(seconds: Double, textOnly: Bool) {
        guard !quiet else { return }
        let percent = state.withLock { s in
            defer { s.percent = -1 }
            return s.percent
        }
        if !terminal && percent >= 0 { Console.err("\n") }
        line("model loaded in \(fixed(seconds)) s" + (textOnly ? " (text-only LLM: no vision tower, images are refused)" : ""))
    }

    // MARK: - Answers

    /// The session's stage callback: which image stage, prefill or decoding is running.
    var stageCallback: @Sendable (ChatStage) -> Void {
        { [self] stage in
            switch stage {
            case .image(let index, let count, let step):
                let name = switch step {
                case .preprocessing: "slicing and resizing"
                case .visionTower: "vision tower"
                case .projector: "VDIM and projector"
                }
                status("image \(index + 1)/\(count): \(name)")
            case .prefill(let positions):
                status("prefill: \(positions) positions")
            case .decoding:
                if terminal { clear() } else { status("decoding") }
            }
        }
    }

    /// The timing lines of one answer (and the load time, when given).
    func summary(_ reply: ChatReply, load: Double? = nil) {
        guard !quiet else { return }
        for text in Self.summaryLines(reply, load: load) { line(text) }
    }

    static func summaryLines(_ reply: ChatReply, load: Double? = nil) -> [String] {
        let t = reply.timings
        var lines: [String] = []
        if let load { lines.append("load:    \(fixed(load)) s") }
        lines.append("images:  \(fixed(t.imageEncoding)) s (\(t.encodedImages) encoded, \(t.cachedImages) from cache)")
        let prefilled = reply.promptPositions - reply.reusedPositions
        lines.append("prefill: \(prefilled) positions in \(fixed(t.prefill)) s (\(rate(prefilled, t.prefill)) tok/s)"
                     + (reply.reusedPositions > 0 ? ", \(reply.reusedPositions) reused from the cache" : ""))
        lines.append("decode:  \(reply.tokens.count) tokens in \(fixed(t.decode)) s (\(rate(reply.tokens.count, t.decode)) tok/s), "
                     + "stopped by \(reply.stopReason.text)")
        return lines
    }

    /// The timings of one answer in one line, for the chat loop.
    static func compactSummary(_ reply: ChatReply) -> String {
        let t = reply.timings
        let prefilled = reply.promptPositions - reply.reusedPositions
        var parts: [String] = []
        if t.encodedImages + t.cachedImages > 0 {
            parts.append("images \(fixed(t.imageEncoding)) s (\(t.encodedImages) encoded, \(t.cachedImages) cached)")
        }
        parts.append("prefill \(prefilled) positions, \(fixed(t.prefill)) s, \(rate(prefilled, t.prefill)) tok/s"
                     + (reply.reusedPositions > 0 ? " (\(reply.reusedPositions) reused)" : ""))
        parts.append("decode \(reply.tokens.count) tokens, \(fixed(t.decode)) s, \(rate(reply.tokens.count, t.decode)) tok/s")
        return "[" + parts.joined(separator: "; ") + "]"
    }

    static func rate(_ count: Int, _ seconds: Double) -> String {
        seconds > 0 ? fixed(Double(count) / seconds, 1) : "-"
    }
}

extension ChatReply.StopReason {
    /// What ended the answer, in words.
    var text: String {
        switch self {
        case .endOfSequence: "end of sequence"
        case .maxNewTokens: "max new tokens"
        case .stopString: "stop string"
        case .callback: "the caller"
        case .contextFull: "a full context"
        }
    }
}
