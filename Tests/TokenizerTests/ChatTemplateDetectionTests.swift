import LlavaUHD
import Testing

/// `ChatTemplateKind.detect` reads a Jinja `chat_template` by the substrings llama.cpp's
/// `llm_chat_detect_template` checks, in its order, and `ChatTemplate.prompt` writes each
/// built-in family as llama.cpp's `llm_chat_apply_template` does. The templates below are the
/// distinguishing lines of real releases' templates (SmolLM2 and Qwen2.5 ChatML, LLaMA-2/3,
/// Mistral, Vicuna) and of families llama.cpp knows but this library does not build in.
@Suite struct ChatTemplateDetectionTests {
    @Test func recognisedFamilies() {
        let cases: [(String, ChatTemplateKind?)] = [
            ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}", .chatML),
            ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}", .llama2),
            ("{% if messages[0]['role'] == 'system' %}{{ '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' }}{% endif %}[INST]", .llama2System),
            ("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}", .llama3),
            ("{{ bos_token }}{% if system_message %}[SYSTEM_PROMPT]{{ system_message }}[/SYSTEM_PROMPT]{% endif %}[INST]", .mistralV7),
            ("{{ bos_token }}{% for message in loop_messages %}{{ ' [INST] ' + system_message + '\\n\\n' }}[INST]", .mistralV1),
            ("[AVAILABLE_TOOLS] {{ '[INST] ' + message['content'] + '[/INST]' }}", .mistralV3),
            ("{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + '\\n' }}{% else %}{{ 'ASSISTANT: ' + message['content'] }}{% endif %}", .vicuna),
            ("chatml", .chatML), ("llama3", .llama3),
            // Known to llama.cpp, not built in here: nil.
            ("{{'<|im_start|>' + message['role'] + '<|im_sep|>'}}", nil),                 // Phi-4
            ("{{ '<|user|>\\n' + message['content'] + '<|end|>\\n<|assistant|>\\n' }}", nil),  // Phi-3
            ("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", nil),  // Gemma
            ("{{ 'SYSTEM: ' + system }}USER: x ASSISTANT: y", nil),                        // Vicuna-Orca
            ("{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}", nil),  // LLaMA-2 strip/BOS variants
            ("{{ message['content'] }}", nil),
        ]
        for (template, kind) in cases {
            #expect(ChatTemplateKind.detect(template: template) == kind, "\(template)")
        }
    }

    @Test func promptsAsLlamaCppWritesThem() throws {
        let turns: [ChatMessage] = [.user("Hi"), .assistant(" Hello! "), .user("Bye")]
        let expected: [(ChatTemplateKind, String)] = [
            (.chatML, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"),
            (.llama2, "[INST] S\nHi [/INST] Hello! </s>[INST] Bye [/INST]"),
            (.llama2System, "[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello! </s>[INST] Bye [/INST]"),
            (.llama3, "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
            (.mistralV1, " [INST] S\n\nHi [/INST]  Hello! </s> [INST] Bye [/INST]"),
            (.mistralV3, "[INST] S\n\nHi[/INST] Hello!</s>[INST] Bye[/INST]"),
            (.mistralV7, "[SYSTEM_PROMPT] S[/SYSTEM_PROMPT][INST] Hi[/INST]  Hello! </s>[INST] Bye[/INST]"),
            (.vicuna, "S\n\nUSER: Hi\nASSISTANT:  Hello! </s>\nUSER: Bye\nASSISTANT:"),
        ]
        for (kind, text) in expected {
            #expect(try ChatTemplate(kind: kind, systemPrompt: "S").prompt(for: turns) == text, "\(kind)")
            #expect(ChatTemplate.defaultSystemPrompt(kind).isEmpty)
        }
    }
}
