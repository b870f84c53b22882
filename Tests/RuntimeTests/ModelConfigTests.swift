import LlavaUHD
import Testing
import TestSupport

/// ModelConfig against the `model.config` section of every upstream case's manifest.json (the
/// config.json the upstream code ran with), and the resolution rules on variants of it.
@Suite struct ModelConfigTests {
    /// What each upstream case must resolve to (fixtures README §1-2, docs/MODEL.md §0, §5, §8).
    struct Expected: Sendable {
        let kind: ProjectorConfig.Kind
        let mask: Int
        let layout: ImageTokenLayout
        let template: ChatTemplateKind
        let architecture: LanguageModelConfig.Architecture
        let bos: Int?
        let eos: [Int]
    }

    static let expected: [String: Expected] = [
        "coffee-v2-mask7": .init(kind: .hiwin, mask: 7, layout: .stitchedGrid, template: .vicunaV1, architecture: .llama, bos: 1, eos: [2]),
        "tall-v2-mask7": .init(kind: .hiwin, mask: 7, layout: .stitchedGrid, template: .vicunaV1, architecture: .llama, bos: 1, eos: [2]),
        "small-noslice": .init(kind: .hiwin, mask: 7, layout: .stitchedGrid, template: .vicunaV1, architecture: .llama, bos: 1, eos: [2]),
        "chelsea-qwen2-mask5": .init(kind: .hiwin, mask: 5, layout: .perSlice, template: .qwen2ChatML, architecture: .qwen2,
                                     bos: nil, eos: [151645, 151643]),
        "rocket-v1": .init(kind: .uhdV1, mask: 0, layout: .stitchedGrid, template: .vicunaV1, architecture: .llama, bos: 1, eos: [2]),
    ]

    static func manifestConfig(_ name: String) throws -> JSONValue {
        try #require(try Fixtures.json(Fixtures.upstream(name) + "/manifest.json")["model"]?["config"])
    }

    @Test(arguments: Fixtures.upstreamCases)
    func manifestConfigResolves(_ name: String) throws {
        let json = try Self.manifestConfig(name)
        let config = try ModelConfig(json: json)
        let e = try #require(Self.expected[name])
        func int(_ key: String) -> Int? { json[key]?.intValue }
        let lm = config.language
        #expect(lm.architecture == e.architecture)
        #expect(lm.hiddenSize == int("hidden_size"))
        #expect(lm.intermediateSize == int("intermediate_size"))
        #expect(lm.layerCount == int("num_hidden_layers"))
        #expect(lm.headCount == int("num_attention_heads"))
        #expect(lm.kvHeadCount == int("num_key_value_heads"))
        #expect(lm.vocabSize == int("vocab_size"))
        #expect(lm.rmsNormEps == Float(json["rms_norm_eps"]?.doubleValue ?? .nan))
        #expect(lm.ropeTheta == Float(json["rope_theta"]?.doubleValue ?? .nan))
        #expect(lm.maxPositionEmbeddings == int("max_position_embeddings"))
        #expect(lm.tieWordEmbeddings == json["tie_word_embeddings"]?.boolValue)
        #expect(lm.bosTokenId == e.bos)
        #expect(lm.eosTokenIds == e.eos)
        #expect(config.projector.kind == e.kind)
        #expect(config.projector.featureScaleMask == e.mask)
        #expect(config.projector.embedDim == int("hidden_size"))
        #expect(config.projector.visionHiddenSize == int("mm_hidden_size"))
        #expect(config.projector.gridSize == 12)
        #expect(config.imageTokenLayout == e.layout)
        #expect(config.chatTemplate == e.template)
        #expect(config.visionSelectLayer == int("mm_vision_select_layer"))
        #expect(config.visionHiddenSize == int("mm_hidden_size"))
        #expect(config.tokenizerModelMaxLength == int("tokenizer_model_max_length"))
    }

    /// The rebuilt model directories hold the same config.json as the manifests.
    @Test(.enabled(if: fileExists(Fixtures.model("coffee-v2-mask7") + "/config.json")), arguments: Fixtures.upstreamCases)
    func modelDirectoryConfigMatchesManifest(_ name: String) throws {
        let fromDirectory = try ModelConfig(directory: Fixtures.model(name))
        #expect(fromDirectory == (try ModelConfig(json: try Self.manifestConfig(name))))
    }

    /// A config.json variant of a manifest's, with keys replaced (`.null` values are removed).
    static func variant(_ name: String, _ changes: [String: JSONValue?]) throws -> JSONValue {
        guard case .object(var members) = try manifestConfig(name) else { throw LlavaError(.internal, "not an object") }
        for (key, value) in changes {
            members.removeAll { $0.0 == key }
            if let value { members.append((key, value)) }
        }
        return .object(members)
    }

    @Test func vicuna13BNewBranchUsesPerSliceLayoutAndVicunaTemplate() throws {
        // The Vicuna-13B release: LLaMA LLM with the LLaVA-UHD-v2 keys.
        let json = try Self.variant("coffee-v2-mask7", [
            "model_mode": .string("uhd_v2"), "mm_projector_type": .string("adapt_spatial_resampler_v2"),
            "feature_mode": nil, "feature_scale_mask": .int(5),
        ])
        let config = try ModelConfig(json: json)
        #expect(config.imageTokenLayout == .perSlice)
        #expect(config.chatTemplate == .vicunaV1)
        #expect(config.projector.kind == .hiwin && config.projector.featureScaleMask == 5)
        #expect(config.language.architecture == .llama)
    }

    @Test func newBranchV1ModeUsesPerSliceLayout() throws {
        let json = try Self.variant("chelsea-qwen2-mask5", [
            "model_mode": .string("uhd_v1"), "mm_projector_type": .string("adapt_spatial_resampler_v1"),
        ])
        let config = try ModelConfig(json: json)
        #expect(config.projector.kind == .uhdV1 && config.projector.featureScaleMask == 0)
        #expect(config.imageTokenLayout == .perSlice)
        #expect(config.chatTemplate == .qwen2ChatML)
    }

    @Test func oldBranchV1ModeWithoutFeatureMode() throws {
        // old-vicuna-7b reads an absent feature_mode as 'uhd_v1'.
        let config = try ModelConfig(json: try Self.variant("rocket-v1", ["feature_mode": nil]))
        #expect(config.projector.kind == .uhdV1)
        #expect(config.imageTokenLayout == .stitchedGrid)
    }

    @Test func upstreamDefaultsApplyToAbsentKeys() throws {
        let json = try Self.variant("coffee-v2-mask7", [
            "feature_scale_mask": nil, "num_key_value_heads": nil, "rms_norm_eps": nil, "rope_theta": nil,
            "max_position_embeddings": nil, "tie_word_embeddings": nil, "bos_token_id": nil, "eos_token_id": nil,
            "mm_vision_select_feature": nil, "mm_use_im_start_end": nil, "tokenizer_model_max_length": nil,
            "rope_scaling": nil, "hidden_act": nil, "attention_bias": nil,
        ])
        let config = try ModelConfig(json: json)
        #expect(config.projector.featureScaleMask == 7)      // AdaptSpatialResampler getattr default
        #expect(config.language.kvHeadCount == 4)            // = num_attention_heads
        #expect(config.language.rmsNormEps == 1e-6)          // LlamaConfig default
        #expect(config.language.ropeTheta == 10000)
        #expect(config.language.maxPositionEmbeddings == 2048)
        #expect(config.language.tieWordEmbeddings == false)
        #expect(config.language.bosTokenId == 1 && config.language.eosTokenIds == [2])
        #expect(config.tokenizerModelMaxLength == nil)

        let qwen = try ModelConfig(json: try Self.variant("chelsea-qwen2-mask5", [
            "feature_scale_mask": nil, "max_position_embeddings": nil, "num_key_value_heads": .null,
        ]))
        #expect(qwen.projector.featureScaleMask == 7)
        #expect(qwen.language.maxPositionEmbeddings == 32768) // Qwen2Config default
        #expect(qwen.language.kvHeadCount == 2)
    }

    @Test func endOfSequenceIdsAcceptAListAndAreDeduplicated() throws {
        let llama = try ModelConfig(json: try Self.variant("coffee-v2-mask7", ["eos_token_id": .array([.int(2), .int(7), .int(2)])]))
        #expect(llama.language.eosTokenIds == [2, 7])
        let qwen = try ModelConfig(json: try Self.variant("chelsea-qwen2-mask5", [
            "eos_token_id": .array([.int(151643), .int(151645)]),
        ]))
        #expect(qwen.language.eosTokenIds == [151643, 151645])
        let noBos = try ModelConfig(json: try Self.variant("coffee-v2-mask7", ["bos_token_id": .null]))
        #expect(noBos.language.bosTokenId == nil)
    }

    @Test(arguments: [3, 5, 7])
    func legalFeatureScaleMasks(_ mask: Int) throws {
        let config = try ModelConfig(json: try Self.variant("coffee-v2-mask7", ["feature_scale_mask": .int(mask)]))
        #expect(config.projector.featureScaleMask == mask)
    }

    @Test(arguments: [(-1, Status.badConfig), (0, .badConfig), (1, .badConfig), (2, .badConfig), (4, .badConfig),
                      (6, .badConfig), (9, .unsupported), (11, .unsupported), (13, .unsupported), (15, .unsupported),
                      (16, .badConfig), (255, .badConfig)])
    func illegalFeatureScaleMasks(_ mask: Int, _ status: Status) throws {
        let json = try Self.variant("coffee-v2-mask7", ["feature_scale_mask": .int(mask)])
        let error = thrownError { () throws(LlavaError) in _ = try ModelConfig(json: json) }
        #expect(error?.status == status, "mask \(mask): \(String(describing: error))")
        #expect(error?.message.contains("feature_scale_mask \(mask)") == true)
    }

    @Test func messagesNameTheSourceFile() throws {
        let error = thrownError { () throws(LlavaError) in
            _ = try ModelConfig(bytes: Array("{\"model_type\": 3}".utf8), source: "/models/x/config.json")
        }
        #expect(error?.status == .badConfig)
        #expect(error?.message.hasPrefix("/models/x/config.json: key 'model_type' must be a string") == true)
    }
}
