// Request parsing and validation for the OpenAI completions and chat completions schemas:
// every field is type- and range-checked, and an error names the field as OpenAI does.
#include "api/protocol.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace quanta::api {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

// The field when present and not null.
const json* field(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> get_number(const json& body, const char* key, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(key, strformat("'%s' must be a number", key));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    bad(key, strformat("'%s' must be between %g and %g, got %g", key, lo, hi, x));
  }
  return x;
}

std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad(key, strformat("'%s' must be an integer", key));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    bad(key, strformat("'%s' is too large", key));
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    bad(key,
        strformat("'%s' must be between %lld and %lld, got %lld", key, static_cast<long long>(lo),
                  static_cast<long long>(hi), static_cast<long long>(x)));
  }
  return x;
}

std::optional<bool> get_bool(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(key, strformat("'%s' must be a boolean", key));
  return v->get<bool>();
}

void parse_stop(const json& body, std::vector<std::string>& stop) {
  const json* v = field(body, "stop");
  if (!v) return;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > 4) bad("stop", "'stop' may hold at most 4 sequences");
    for (const json& s : *v) {
      if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
      stop.push_back(s.get<std::string>());
    }
  } else {
    bad("stop", "'stop' must be a string or an array of strings");
  }
  for (const std::string& s : stop) {
    if (s.empty()) bad("stop", "'stop' sequences must not be empty");
  }
}

// Sampling fields shared by both endpoints. OpenAI's defaults: temperature 1, top_p 1, no
// top-k or min-p (llama.cpp's CLI defaults do not apply to the API).
void parse_sampling(const json& body, uint64_t seed_if_absent, SamplingParams& s) {
  s.temperature = static_cast<float>(get_number(body, "temperature", 0.0, 2.0).value_or(1.0));
  s.top_p = static_cast<float>(get_number(body, "top_p", 0.0, 1.0).value_or(1.0));
  if (s.top_p <= 0.0f) bad("top_p", "'top_p' must be greater than 0");
  const int64_t top_k = get_int(body, "top_k", -1, INT32_MAX).value_or(0);
  s.top_k = top_k < 0 ? 0 : static_cast<int32_t>(top_k);  // -1 (vLLM's "off") = 0
  s.min_p = static_cast<float>(get_number(body, "min_p", 0.0, 1.0).value_or(0.0));
  s.frequency_penalty =
      static_cast<float>(get_number(body, "frequency_penalty", -2.0, 2.0).value_or(0.0));
  s.presence_penalty =
      static_cast<float>(get_number(body, "presence_penalty", -2.0, 2.0).value_or(0.0));
  s.repeat_penalty =
      static_cast<float>(get_number(body, "repetition_penalty", 0.0, 2.0).value_or(1.0));
  if (s.repeat_penalty <= 0.0f) bad("repetition_penalty", "'repetition_penalty' must be > 0");
  const std::optional<int64_t> seed = get_int(body, "seed", INT64_MIN, INT64_MAX);
  s.seed = seed ? static_cast<uint64_t>(*seed) : seed_if_absent;
}

// Fields we do not implement are refused when they ask for something, not silently ignored.
void refuse_unsupported(const json& body) {
  if (get_bool(body, "echo").value_or(false)) bad("echo", "'echo' is not supported");
  if (field(body, "suffix")) bad("suffix", "'suffix' is not supported");
  if (const json* lb = field(body, "logit_bias"); lb && !(lb->is_object() && lb->empty())) {
    bad("logit_bias", "'logit_bias' is not supported");
  }
  if (const json* t = field(body, "tools"); t && !(t->is_array() && t->empty())) {
    bad("tools", "'tools' is not supported");
  }
  if (const json* rf = field(body, "response_format")) {
    if (!rf->is_object() || rf->value("type", "") != "text") {
      bad("response_format", "only {\"type\": \"text\"} is supported for 'response_format'");
    }
  }
}

void parse_prompt(const json& body, ApiRequest& r) {
  const json* p = field(body, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  const json* one = p;
  if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
    if (p->size() != 1) bad("prompt", "only one prompt per request is supported");
    one = &p->front();
  }
  if (one->is_string()) {
    r.prompt_text = one->get<std::string>();
    if (r.prompt_text.empty()) bad("prompt", "'prompt' must not be empty");
    return;
  }
  if (!one->is_array()) bad("prompt", "'prompt' must be a string or an array of token ids");
  if (one->empty()) bad("prompt", "'prompt' must not be empty");
  r.prompt_is_tokens = true;
  for (const json& t : *one) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX) {
      bad("prompt", "'prompt' token ids must be non-negative integers");
    }
    r.prompt_tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
}

std::string message_content(const json& m, const std::string& param) {
  const json* c = field(m, "content");
  if (!c) bad(param, "'" + param + "' is required");
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) bad(param, "'" + param + "' must be a string or an array of text parts");
  std::string text;
  for (const json& part : *c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      bad(param, "'" + param + "' parts must be {\"type\": \"text\", \"text\": ...}");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

void parse_messages(const json& body, ApiRequest& r) {
  const json* ms = field(body, "messages");
  if (!ms) bad("messages", "'messages' is required");
  if (!ms->is_array() || ms->empty()) bad("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string at = strformat("messages[%zu]", i);
    if (!m.is_object()) bad(at, "'" + at + "' must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) bad(at + ".role", "'" + at + ".role' must be a string");
    ChatMessage msg{role->get<std::string>(), message_content(m, at + ".content")};
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
      bad(at + ".role",
          "'" + at + ".role' must be system, developer, user or assistant, got '" + msg.role + "'");
    }
    r.messages.push_back(std::move(msg));
  }
}

void parse_logprobs(const json& body, ApiRequest& r) {
  if (r.endpoint == Endpoint::kCompletions) {
    const std::optional<int64_t> k = get_int(body, "logprobs", 0, 5);
    r.logprobs = k.has_value();
    r.gen.top_logprobs = k ? static_cast<int32_t>(*k) : -1;
    return;
  }
  r.logprobs = get_bool(body, "logprobs").value_or(false);
  const std::optional<int64_t> top = get_int(body, "top_logprobs", 0, 20);
  if (top && !r.logprobs) bad("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
  r.gen.top_logprobs = r.logprobs ? static_cast<int32_t>(top.value_or(0)) : -1;
}

void parse_stream(const json& body, ApiRequest& r) {
  r.stream = get_bool(body, "stream").value_or(false);
  const json* so = field(body, "stream_options");
  if (!so) return;
  if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
  if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
  const json* iu = field(*so, "include_usage");
  if (iu && !iu->is_boolean()) {
    bad("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
  }
  r.include_usage = iu && iu->get<bool>();
}

// quanta's extension "speculative": {"ngram": N, "max_draft": K} (n-gram prompt lookup; ngram
// 0 turns the server's default off; without ngram it is 3), or false (off) / true (ngram 3);
// max_draft defaults to the server's --draft-max.
void parse_speculative(const json& body, serve::SpecParams& spec) {
  const json* v = field(body, "speculative");
  if (!v) return;
  if (v->is_boolean()) {
    spec.ngram = v->get<bool>() ? 3 : 0;
    return;
  }
  if (!v->is_object()) bad("speculative", "'speculative' must be an object or a boolean");
  for (const auto& [key, value] : v->items()) {
    if (key != "ngram" && key != "max_draft" && key != "draft" && key != "min_draft") {
      bad("speculative." + key,
          "unknown field 'speculative." + key + "' (ngram, max_draft, draft, min_draft)");
    }
  }
  try {
    if (auto n = get_int(*v, "ngram", 0, serve::kMaxSpecNgram))
      spec.ngram = static_cast<int32_t>(*n);
    if (auto k = get_int(*v, "max_draft", 1, serve::kMaxSpecDraft)) {
      spec.max_draft = static_cast<int32_t>(*k);
    }
    // "draft": true = the server's draft model (--draft-model/--draft-quant), false = not.
    if (const json* d = field(*v, "draft")) {
      if (!d->is_boolean()) bad("draft", "'draft' must be a boolean");
      spec.draft = d->get<bool>() ? 1 : 0;
    }
    if (auto k = get_int(*v, "min_draft", 1, serve::kMaxSpecDraft)) {
      spec.min_draft = static_cast<int32_t>(*k);
    }
  } catch (const ApiError& e) {
    const std::string what = e.what();  // "'ngram' must be ..."
    throw ApiError(400, "'speculative." + what.substr(1), "speculative." + e.param);
  }
  // An object without ngram turns speculation on: n-gram 3 unless it names the draft model.
  if (spec.ngram < 0 && spec.draft < 0) spec.ngram = 3;
}

}  // namespace

std::string error_body(const std::string& message, const std::string& type,
                       const std::string& param) {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_body(const ApiError& e) {
  return error_body(e.what(), e.type, e.param);
}

ApiRequest parse_request(Endpoint endpoint, const std::string& body_text, uint64_t seed_if_absent) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::parse_error&) {
    throw ApiError(400, "We could not parse the JSON body of your request.");
  }
  if (!body.is_object()) throw ApiError(400, "The request body must be a JSON object.");
  ApiRequest r;
  r.endpoint = endpoint;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) bad("model", "'model' must be a string");
    r.model = m->get<std::string>();
  }
  if (endpoint == Endpoint::kCompletions) {
    parse_prompt(body, r);
  } else {
    parse_messages(body, r);
  }
  std::optional<int64_t> max_tokens = get_int(body, "max_tokens", 1, INT32_MAX);
  if (endpoint == Endpoint::kChat) {
    if (auto mct = get_int(body, "max_completion_tokens", 1, INT32_MAX)) max_tokens = mct;
  } else if (!max_tokens) {
    max_tokens = 16;  // OpenAI's completions default
  }
  if (max_tokens) r.max_tokens = static_cast<int32_t>(*max_tokens);
  r.gen.n = static_cast<int32_t>(get_int(body, "n", 1, kMaxChoices).value_or(1));
  if (auto best_of = get_int(body, "best_of", 1, kMaxChoices); best_of && *best_of != r.gen.n) {
    bad("best_of", "'best_of' must equal 'n' (no server-side ranking)");
  }
  parse_sampling(body, seed_if_absent, r.gen.sampling);
  parse_stop(body, r.gen.stop);
  parse_stream(body, r);
  parse_logprobs(body, r);
  r.gen.ignore_eos = get_bool(body, "ignore_eos").value_or(false);
  parse_speculative(body, r.gen.speculative);
  refuse_unsupported(body);
  if (const json* u = field(body, "user"); u && !u->is_string())
    bad("user", "'user' must be a string");
  return r;
}

}  // namespace quanta::api
