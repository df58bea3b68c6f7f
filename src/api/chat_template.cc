// Chat template families rendered by hand. Each render_* reproduces the reference Jinja
// template of its family (Hugging Face chat templates of Qwen/ChatML, meta-llama Llama-2-chat
// and Llama-3-Instruct, Mistral-7B-Instruct, HuggingFaceH4 zephyr-7b-beta).
#include "api/chat_template.h"

#include "core/error.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace quanta::api {
namespace {

[[noreturn]] void bad_messages(const std::string& message) {
  throw ApiError(400, message, "messages");
}

std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Splits a leading system message off; the rest must alternate user/assistant from user.
std::vector<ChatMessage> alternating(const std::vector<ChatMessage>& messages, std::string* system,
                                     bool system_allowed) {
  std::vector<ChatMessage> rest;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      if (i != 0 || !system_allowed) {
        bad_messages("this model's chat template accepts a system message only as the first");
      }
      *system = m.content;
      continue;
    }
    const bool want_user = rest.size() % 2 == 0;
    if ((m.role == "user") != want_user) {
      bad_messages("Conversation roles must alternate user/assistant/user/assistant/...");
    }
    rest.push_back(m);
  }
  if (rest.empty() || rest.back().role != "user") {
    bad_messages("the last message must be from the user for this model's chat template");
  }
  return rest;
}

std::string render_chatml(const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const ChatMessage& m : messages) {
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  return out + "<|im_start|>assistant\n";
}

std::string render_llama2(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string system;
  bool has_system = !messages.empty() && messages.front().role == "system";
  const std::vector<ChatMessage> turns = alternating(messages, &system, true);
  std::string out;
  for (size_t i = 0; i < turns.size(); ++i) {
    std::string content = turns[i].content;
    if (i == 0 && has_system) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
    // Appended piece by piece (GCC 12 warns falsely on the temporaries of a + chain).
    if (turns[i].role == "user") {
      out.append(t.bos).append("[INST] ").append(strip(content)).append(" [/INST]");
    } else {
      out.append(" ").append(strip(content)).append(" ").append(t.eos);
    }
  }
  return out;
}

std::string render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string out = t.bos;
  for (const ChatMessage& m : messages) {
    out +=
        "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + strip(m.content) + "<|eot_id|>";
  }
  return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

// NOTE: Mistral-7B-Instruct v0.1's template raises on a system message; later versions put
// it before a user message's text with "\n\n". We do that for the first user message.
std::string render_mistral(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string system;
  const bool has_system = !messages.empty() && messages.front().role == "system";
  const std::vector<ChatMessage> turns = alternating(messages, &system, true);
  std::string out = t.bos;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].role == "user") {
      const std::string content =
          (i == 0 && has_system) ? system + "\n\n" + turns[i].content : turns[i].content;
      out += "[INST] " + content + " [/INST]";
    } else {
      out += turns[i].content + t.eos;
    }
  }
  return out;
}

std::string render_zephyr(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string out;
  for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + t.eos + "\n";
  return out + "<|assistant|>\n";
}

std::string token_text(const tokenizer::Tokenizer& tok, int32_t id, const char* fallback) {
  if (id < 0 || id >= tok.n_vocab()) return fallback;
  return tok.vocab().tokens[static_cast<size_t>(id)];
}

}  // namespace

const char* chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatml:
      return "chatml";
    case ChatFamily::kLlama2:
      return "llama2";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kMistral:
      return "mistral";
    case ChatFamily::kZephyr:
      return "zephyr";
  }
  return "?";
}

ChatFamily chat_family_from_name(const std::string& name) {
  for (ChatFamily f : {ChatFamily::kChatml, ChatFamily::kLlama2, ChatFamily::kLlama3,
                       ChatFamily::kMistral, ChatFamily::kZephyr}) {
    if (name == chat_family_name(f)) return f;
  }
  fail("unknown chat template '%s' (expected chatml, llama2, llama3, mistral or zephyr)",
       name.c_str());
}

std::optional<ChatFamily> detect_chat_family(const std::string& text) {
  const auto has = [&](const char* marker) { return text.find(marker) != std::string::npos; };
  if (has("<|im_start|>")) return ChatFamily::kChatml;
  if (has("<|start_header_id|>")) return ChatFamily::kLlama3;
  if (has("[INST]")) return has("<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral;
  if (has("<|user|>") && has("<|assistant|>") && !has("<|end|>")) return ChatFamily::kZephyr;
  return std::nullopt;
}

ChatTemplate chat_template_for(const gguf::File& file, const tokenizer::Tokenizer& tok,
                               const std::string& override_name, std::string* note) {
  ChatTemplate t;
  const std::optional<std::string> text = file.get_string("tokenizer.chat_template");
  if (!override_name.empty()) {
    t.family = chat_family_from_name(override_name);
  } else if (!text) {
    t.family = ChatFamily::kChatml;
    if (note) *note = "the model has no tokenizer.chat_template; chat uses ChatML";
  } else if (const std::optional<ChatFamily> f = detect_chat_family(*text)) {
    t.family = *f;
  } else {
    const std::string head = text->substr(0, 120);
    fail(
        "unsupported chat template (not ChatML, Llama-2, Llama-3, Mistral or Zephyr; use "
        "--chat-template to choose one): %s%s",
        head.c_str(), text->size() > head.size() ? "..." : "");
  }
  const char* bos_default = t.family == ChatFamily::kLlama3 ? "<|begin_of_text|>" : "<s>";
  t.bos = token_text(tok, tok.bos(), bos_default);
  t.eos = token_text(tok, tok.eos(), "</s>");
  return t;
}

std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages) {
  switch (tmpl.family) {
    case ChatFamily::kChatml:
      return render_chatml(messages);
    case ChatFamily::kLlama2:
      return render_llama2(tmpl, messages);
    case ChatFamily::kLlama3:
      return render_llama3(tmpl, messages);
    case ChatFamily::kMistral:
      return render_mistral(tmpl, messages);
    case ChatFamily::kZephyr:
      return render_zephyr(tmpl, messages);
  }
  return "";
}

}  // namespace quanta::api
