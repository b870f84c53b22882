import LlavaUHD
import Testing

/// Integers in config.json that do not fit the 32 bits the C ABI reports them in are refused
/// at load, naming the key (issue 12: max_position_embeddings 3000000000 loaded and then
/// trapped in luhd_model_get_properties).
@Suite struct HostileConfigTests {
    @Test(arguments: ["max_position_embeddings", "hidden_size", "vocab_size", "num_hidden_layers",
                      "mm_vision_select_layer", "feature_scale_mask", "tokenizer_model_max_length"])
    func integerOutside32BitsIsBadConfig(_ key: String) throws {
        for value in [3_000_000_000, -3_000_000_000, Int.max] {
            let json = try ModelConfigTests.variant("chelsea-qwen2-mask5", [key: .int(value)])
            do {
                _ = try ModelConfig(json: json)
                Issue.record("\(key) = \(value) was accepted")
            } catch {
                #expect(error.status == .badConfig)
                #expect(error.message.contains(key), "\(error)")
            }
        }
    }

    @Test func eosListWithAHugeIdIsBadConfig() throws {
        let json = try ModelConfigTests.variant("chelsea-qwen2-mask5", ["eos_token_id": .array([.int(2), .int(1 << 40)])])
        #expect(throws: LlavaError.self) { _ = try ModelConfig(json: json) }
    }

    /// The largest value that fits still loads (the bound is not tighter than 32 bits).
    @Test func largestPositionCountStillLoads() throws {
        let json = try ModelConfigTests.variant("chelsea-qwen2-mask5", ["max_position_embeddings": .int(Int(Int32.max))])
        #expect(try ModelConfig(json: json).language.maxPositionEmbeddings == Int(Int32.max))
    }
}
