/// The parts of a SentencePiece `ModelProto` (tokenizer.model) that encoding and decoding use,
/// read from the protobuf wire format by hand (field numbers of sentencepiece_model.proto:
/// ModelProto 1 pieces, 2 trainer_spec, 3 normalizer_spec, 5 denormalizer_spec).
struct SentencePieceModelProto: Sendable {
    enum PieceType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    struct Piece: Sendable {
        /// The piece text (UTF-8 bytes, "▁" for a space).
        var text: [UInt8] = []
        var score: Float = 0
        var type: PieceType = .normal
    }

    enum ModelType: Int32, Sendable {
        case unigram = 1, bpe = 2, word = 3, char = 4
    }

    /// TrainerSpec fields that change encoding or decoding (field numbers in comments). The
    /// splitting options (split_digits, split_by_whitespace, split_by_number, …) only shape the
    /// vocabulary during training: a BPE model's encoder does not read them.
    struct TrainerSpec: Sendable {
        var modelType: ModelType = .unigram              // 3
        var treatWhitespaceAsSuffix = false              // 24
        var byteFallback = false                         // 35
        var unkSurface: [UInt8] = Array(" \u{2047} ".utf8)  // 44 (sentencepiece's kDefaultUnknownSymbol)
        var unkPiece: [UInt8] = Array("<unk>".utf8)      // 45
        var bosPiece: [UInt8] = Array("<s>".utf8)        // 46
        var eosPiece: [UInt8] = Array("</s>".utf8)       // 47
        var padPiece: [UInt8] = Array("<pad>".utf8)      // 48
    }

    /// NormalizerSpec (proto defaults: dummy prefix, whitespace removal and escaping all on).
    struct NormalizerSpec: Sendable {
        var name = ""                                    // 1
        var precompiledCharsMap: [UInt8] = []            // 2
        var addDummyPrefix = true                        // 3
        var removeExtraWhitespaces = true                // 4
        var escapeWhitespaces = true                     // 5
    }

    var pieces: [Piece] = []
    var trainer = TrainerSpec()
    var normalizer = NormalizerSpec()
    var denormalizer: NormalizerSpec?

    /// Parses a serialized ModelProto. `path` only names the file in errors.
    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(LlavaError) -> SentencePieceModelProto {
        var model = SentencePieceModelProto()
        var reader = ProtobufReader(bytes, context: "'\(path)' (SentencePiece model)")
        while let (number, type) = try reader.nextField() {
            switch number {
            case 1:
                try reader.expect(.lengthDelimited, type, field: "pieces")
                let r = try reader.readLengthDelimited()
                model.pieces.append(try parsePiece(bytes, r, context: reader.context))
            case 2:
                try reader.expect(.lengthDelimited, type, field: "trainer_spec")
                let r = try reader.readLengthDelimited()
                try parseTrainerSpec(bytes, r, into: &model.trainer, context: reader.context)
            case 3:
                try reader.expect(.lengthDelimited, type, field: "normalizer_spec")
                let r = try reader.readLengthDelimited()
                try parseNormalizerSpec(bytes, r, into: &model.normalizer, context: reader.context)
            case 5:
                try reader.expect(.lengthDelimited, type, field: "denormalizer_spec")
                let r = try reader.readLengthDelimited()
                var spec = model.denormalizer ?? NormalizerSpec()
                try parseNormalizerSpec(bytes, r, into: &spec, context: reader.context)
                model.denormalizer = spec
            default:
                try reader.skip(type)
            }
        }
        return model
    }

    private static func parsePiece(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>,
                                   context: String) throws(LlavaError) -> Piece {
        var piece = Piece()
        var reader = ProtobufReader(bytes, range: range, context: context + " piece")
        while let (number, type) = try reader.nextField() {
            switch number {
            case 1:
                try reader.expect(.lengthDelimited, type, field: "piece")
                piece.text = reader.slice(try reader.readLengthDelimited())
            case 2:
                try reader.expect(.fixed32, type, field: "score")
                piece.score = try reader.readFloat()
            case 3:
                try reader.expect(.varint, type, field: "type")
                let raw = try reader.readInt32()
                guard let t = PieceType(rawValue: raw) else { throw reader.error("unknown piece type \(raw)") }
                piece.type = t
            default:
                try reader.skip(type)
            }
        }
        return piece
    }

    private static func parseTrainerSpec(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>,
                                         into spec: inout TrainerSpec, context: String) throws(LlavaError) {
        var reader = ProtobufReader(bytes, range: range, context: context + " trainer_spec")
        while let (number, type) = try reader.nextField() {
            switch number {
            case 3:
                try reader.expect(.varint, type, field: "model_type")
                let raw = try reader.readInt32()
                guard let t = ModelType(rawValue: raw) else { throw reader.error("unknown model_type \(raw)") }
                spec.modelType = t
            case 24:
                try reader.expect(.varint, type, field: "treat_whitespace_as_suffix")
                spec.treatWhitespaceAsSuffix = try reader.readBool()
            case 35:
                try reader.expect(.varint, type, field: "byte_fallback")
                spec.byteFallback = try reader.readBool()
            case 44, 45, 46, 47, 48:
                try reader.expect(.lengthDelimited, type, field: "trainer_spec.\(number)")
                let text = reader.slice(try reader.readLengthDelimited())
                switch number {
                case 44: spec.unkSurface = text
                // An empty piece name means "use the default" (sentencepiece's RETURN_PIECE).
                case 45: if !text.isEmpty { spec.unkPiece = text }
                case 46: if !text.isEmpty { spec.bosPiece = text }
                case 47: if !text.isEmpty { spec.eosPiece = text }
                default: if !text.isEmpty { spec.padPiece = text }
                }
            default:
                try reader.skip(type)
            }
        }
    }

    private static func parseNormalizerSpec(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>,
                                            into spec: inout NormalizerSpec, context: String) throws(LlavaError) {
        var reader = ProtobufReader(bytes, range: range, context: context + " normalizer_spec")
        while let (number, type) = try reader.nextField() {
            switch number {
            case 1:
                try reader.expect(.lengthDelimited, type, field: "name")
                spec.name = String(decoding: reader.slice(try reader.readLengthDelimited()), as: UTF8.self)
            case 2:
                try reader.expect(.lengthDelimited, type, field: "precompiled_charsmap")
                spec.precompiledCharsMap = reader.slice(try reader.readLengthDelimited())
            case 3:
                try reader.expect(.varint, type, field: "add_dummy_prefix")
                spec.addDummyPrefix = try reader.readBool()
            case 4:
                try reader.expect(.varint, type, field: "remove_extra_whitespaces")
                spec.removeExtraWhitespaces = try reader.readBool()
            case 5:
                try reader.expect(.varint, type, field: "escape_whitespaces")
                spec.escapeWhitespaces = try reader.readBool()
            default:
                try reader.skip(type)
            }
        }
    }
}
