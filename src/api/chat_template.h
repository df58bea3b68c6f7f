// Chat templates: recognizes the family of a GGUF `tokenizer.chat_template` (ChatML, Llama-2,
// Llama-3, Mistral, Zephyr) by its markers and renders messages plus the generation prompt
// exactly as that family's Jinja template does, without a Jinja interpreter.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/protocol.h"

namespace quanta::gguf {
class File;
}
namespace quanta::tokenizer {
class Tokenizer;
}

namespace quanta::api {

enum class ChatFamily { kChatml, kLlama2, kLlama3, kMistral, kZephyr };

struct ChatTemplate {
  ChatFamily family = ChatFamily::kChatml;
  std::string bos = "<s>";  // the template's bos_token / eos_token texts
  std::string eos = "</s>";
};

const char* chat_family_name(ChatFamily family);
// "chatml", "llama2", "llama3", "mistral", "zephyr"; throws quanta::Error naming the choices.
ChatFamily chat_family_from_name(const std::string& name);
// The family a template's text belongs to, by its markers; nullopt when none matches.
std::optional<ChatFamily> detect_chat_family(const std::string& template_text);

// The template of a model: `override_name` when non-empty, else detected from
// tokenizer.chat_template (quanta::Error naming the unsupported template), else ChatML with
// `note` explaining the default. bos/eos texts come from the tokenizer's vocabulary.
ChatTemplate chat_template_for(const gguf::File& file, const tokenizer::Tokenizer& tok,
                               const std::string& override_name, std::string* note);

// Messages + the assistant generation prompt as one string. Throws ApiError(400, "messages")
// where the family's template raises (roles not alternating, system where none is allowed).
std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages);

}  // namespace quanta::api
