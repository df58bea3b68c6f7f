// Builds OpenAI-shaped JSON for completions and chat completions, streamed or not. Token
// texts may be partial UTF-8: invalid bytes are replaced (U+FFFD) in strings, and chat
// logprobs also carry the exact "bytes".
#include "api/response.h"

#include <nlohmann/json.hpp>
#include <random>

namespace quanta::api {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Chat: {"content": [{"token","logprob","bytes","top_logprobs":[...]}]}.
json chat_logprobs(const std::vector<serve::TokenLogprob>& lps) {
  json content = json::array();
  for (const serve::TokenLogprob& lp : lps) {
    json top = json::array();
    for (const serve::TopLogprob& t : lp.top) {
      top.push_back({{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes_of(t.text)}});
    }
    content.push_back({{"token", lp.text},
                       {"logprob", lp.logprob},
                       {"bytes", bytes_of(lp.text)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// Completions: {"tokens","token_logprobs","top_logprobs":[{text: logprob}],"text_offset"}.
json completion_logprobs(const std::vector<serve::TokenLogprob>& lps, int64_t& offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(),
       offsets = json::array();
  for (const serve::TokenLogprob& lp : lps) {
    tokens.push_back(lp.text);
    token_lps.push_back(lp.logprob);
    json top = json::object();
    for (const serve::TopLogprob& t : lp.top) {
      top[t.text] = t.logprob;  // dump() replaces invalid UTF-8 in keys too
    }
    tops.push_back(top);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(lp.text.size());
  }
  return {{"tokens", tokens},
          {"token_logprobs", token_lps},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

json usage_json(const serve::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json finish_json(FinishReason r) {
  return r == FinishReason::kNone ? json(nullptr) : json(finish_reason_name(r));
}

json chunk_base(const ResponseMeta& meta) {
  const bool chat = meta.endpoint == Endpoint::kChat;
  json j = {{"id", meta.id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", meta.created},
            {"model", meta.model}};
  if (meta.include_usage) j["usage"] = nullptr;
  return j;
}

std::string event(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

}  // namespace

std::string new_response_id(Endpoint endpoint) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

const char* finish_reason_name(FinishReason reason) {
  return reason == FinishReason::kLength ? "length" : "stop";
}

std::string response_body(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                          const serve::Usage& usage) {
  const bool chat = meta.endpoint == Endpoint::kChat;
  json out = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json choice = {{"index", i}};
    int64_t offset = 0;
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      choice["logprobs"] = meta.logprobs ? chat_logprobs(c.logprobs) : json(nullptr);
    } else {
      choice["text"] = c.text;
      choice["logprobs"] = meta.logprobs ? completion_logprobs(c.logprobs, offset) : json(nullptr);
    }
    choice["finish_reason"] = finish_json(c.finish);
    out.push_back(choice);
  }
  return dump({{"id", meta.id},
               {"object", chat ? "chat.completion" : "text_completion"},
               {"created", meta.created},
               {"model", meta.model},
               {"choices", out},
               {"usage", usage_json(usage)}});
}

std::string stream_events(const ResponseMeta& meta, const serve::ChoiceDelta& delta,
                          StreamChoiceState& state) {
  std::string events;
  json j = chunk_base(meta);
  if (meta.endpoint == Endpoint::kCompletions) {
    json choice = {{"index", delta.index}, {"text", delta.text}};
    choice["logprobs"] =
        meta.logprobs ? completion_logprobs(delta.logprobs, state.text_offset) : json(nullptr);
    choice["finish_reason"] = finish_json(delta.finish);
    j["choices"] = json::array({choice});
    return event(j);
  }
  const bool has_content = !delta.text.empty() || !delta.logprobs.empty();
  if (has_content || !state.role_sent) {
    json d = {{"content", delta.text}};
    if (!state.role_sent) d["role"] = "assistant";
    state.role_sent = true;
    json choice = {{"index", delta.index}, {"delta", d}};
    choice["logprobs"] = meta.logprobs ? chat_logprobs(delta.logprobs) : json(nullptr);
    choice["finish_reason"] = nullptr;
    j["choices"] = json::array({choice});
    events += event(j);
  }
  if (delta.finish != FinishReason::kNone) {
    json choice = {{"index", delta.index},
                   {"delta", json::object()},
                   {"logprobs", nullptr},
                   {"finish_reason", finish_json(delta.finish)}};
    j["choices"] = json::array({choice});
    events += event(j);
  }
  return events;
}

std::string stream_usage_event(const ResponseMeta& meta, const serve::Usage& usage) {
  json j = chunk_base(meta);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return event(j);
}

std::string stream_error_event(const ApiError& error) {
  return "data: " + error_body(error) + "\n\n";
}

}  // namespace quanta::api
