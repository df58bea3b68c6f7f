// Chat templates: family detection from real template texts, rendering of each family
// against the output its reference Jinja template documents, and the errors they raise.
#include "api/chat_template.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace quanta::api {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "You are helpful."},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "How are you?"},
};

ChatTemplate family(ChatFamily f, std::string bos = "<s>", std::string eos = "</s>") {
  return ChatTemplate{f, std::move(bos), std::move(eos)};
}

TEST(ChatTemplate, DetectsFamiliesByMarkers) {
  // Abridged from the templates shipped in the GGUFs of each family.
  EXPECT_EQ(detect_chat_family("{% for message in messages %}{{'<|im_start|>' + message['role'] "
                               "+ '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"),
            ChatFamily::kChatml);
  EXPECT_EQ(detect_chat_family("{% set content = '<|start_header_id|>' + message['role'] + "
                               "'<|end_header_id|>\\n\\n' + message['content'] | trim + "
                               "'<|eot_id|>' %}"),
            ChatFamily::kLlama3);
  EXPECT_EQ(detect_chat_family("{% set content = '<<SYS>>\\n' + system_message + "
                               "'\\n<</SYS>>\\n\\n' %}{{ bos_token + '[INST] ' + content.strip() "
                               "+ ' [/INST]' }}"),
            ChatFamily::kLlama2);
  EXPECT_EQ(detect_chat_family("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
                               "message['content'] + ' [/INST]' }}{% endfor %}"),
            ChatFamily::kMistral);
  EXPECT_EQ(detect_chat_family("{{ '<|user|>\\n' + message['content'] + eos_token }}{{ "
                               "'<|assistant|>' }}"),
            ChatFamily::kZephyr);
  EXPECT_FALSE(detect_chat_family("{{ '<start_of_turn>' + role + '\\n' }}").has_value());
  EXPECT_FALSE(detect_chat_family("<|user|>{{c}}<|end|><|assistant|>").has_value());  // Phi-3
}

TEST(ChatTemplate, NamesRoundTripAndUnknownNameIsAnError) {
  for (ChatFamily f : {ChatFamily::kChatml, ChatFamily::kLlama2, ChatFamily::kLlama3,
                       ChatFamily::kMistral, ChatFamily::kZephyr}) {
    EXPECT_EQ(chat_family_from_name(chat_family_name(f)), f);
  }
  try {
    chat_family_from_name("gemma");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemma"), std::string::npos);
  }
}

TEST(ChatTemplate, ChatML) {
  EXPECT_EQ(render_chat(family(ChatFamily::kChatml), kConversation),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n"
            "<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama2FoldsTheSystemPromptIntoTheFirstTurn) {
  EXPECT_EQ(render_chat(family(ChatFamily::kLlama2), kConversation),
            "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] How are you? [/INST]");
  EXPECT_EQ(render_chat(family(ChatFamily::kLlama2), {{"user", "  Hi  "}}), "<s>[INST] Hi [/INST]");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render_chat(family(ChatFamily::kLlama3, "<|begin_of_text|>"), kConversation),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Mistral) {
  const std::vector<ChatMessage> turns(kConversation.begin() + 1, kConversation.end());
  EXPECT_EQ(render_chat(family(ChatFamily::kMistral), turns),
            "<s>[INST] Hello [/INST]Hi there</s>[INST] How are you? [/INST]");
  EXPECT_EQ(render_chat(family(ChatFamily::kMistral), kConversation),
            "<s>[INST] You are helpful.\n\nHello [/INST]Hi there</s>[INST] How are you? [/INST]");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(render_chat(family(ChatFamily::kZephyr), kConversation),
            "<|system|>\nYou are helpful.</s>\n<|user|>\nHello</s>\n"
            "<|assistant|>\nHi there</s>\n<|user|>\nHow are you?</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, AlternationErrorsNameMessages) {
  for (ChatFamily f : {ChatFamily::kLlama2, ChatFamily::kMistral}) {
    for (const std::vector<ChatMessage>& bad :
         {std::vector<ChatMessage>{{"user", "a"}, {"user", "b"}},
          std::vector<ChatMessage>{{"assistant", "a"}},
          std::vector<ChatMessage>{{"user", "a"}, {"assistant", "b"}},
          std::vector<ChatMessage>{{"user", "a"}, {"system", "b"}, {"user", "c"}}}) {
      try {
        render_chat(family(f), bad);
        ADD_FAILURE() << chat_family_name(f);
      } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.param, "messages");
      }
    }
  }
}

// stories260K's metadata, with `chat_template` as tokenizer.chat_template when non-empty.
gguf::File stories_with_template(const std::string& chat_template) {
  const gguf::File base = gguf::File::open(testlib::shared_path("models/stories260K.gguf"));
  gguf::Writer w = gguf::Writer::from_file(base);
  if (!chat_template.empty()) w.set("tokenizer.chat_template", gguf::Value::string(chat_template));
  return gguf::File::from_bytes(w.to_bytes());
}

TEST(ChatTemplate, FromModelMetadata) {
  const gguf::File plain = stories_with_template("");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(plain);
  std::string note;
  ChatTemplate t = chat_template_for(plain, tok, "", &note);
  EXPECT_EQ(t.family, ChatFamily::kChatml);
  EXPECT_NE(note.find("ChatML"), std::string::npos) << note;
  EXPECT_EQ(t.bos, "<s>");  // the vocabulary's BOS and EOS texts
  EXPECT_EQ(t.eos, "</s>");

  note.clear();
  const gguf::File llama3 = stories_with_template("{{ '<|start_header_id|>' + role }}");
  EXPECT_EQ(chat_template_for(llama3, tok, "", &note).family, ChatFamily::kLlama3);
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(chat_template_for(llama3, tok, "zephyr", &note).family, ChatFamily::kZephyr);

  const gguf::File odd = stories_with_template("{{ '<start_of_turn>' + role }}");
  try {
    chat_template_for(odd, tok, "", &note);
    ADD_FAILURE() << "accepted an unknown template";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("<start_of_turn>"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  EXPECT_EQ(chat_template_for(odd, tok, "mistral", &note).family, ChatFamily::kMistral);
}

}  // namespace
}  // namespace quanta::api
