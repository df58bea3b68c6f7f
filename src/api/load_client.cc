// Load-generator requests over cpp-httplib: streamed completions timed at the first text
// event (TTFT) and at the end, token counts from the usage chunk.
#include "api/load_client.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace quanta::api {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The error message of an OpenAI error body, else the body's start.
std::string error_message(int status, const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.contains("error"))
      return strformat("HTTP %d: %s", status, j["error"].value("message", "").c_str());
  } catch (const json::exception&) {
  }
  return strformat("HTTP %d: %s", status, body.substr(0, 200).c_str());
}

// Reads one stream event into the sample (`chunks` counts those with choices); returns false
// on [DONE] or an error.
bool take_event(const std::string& data, Clock::time_point t0, RequestSample& s, int32_t& chunks,
                bool& done) {
  if (data == "[DONE]") {
    done = true;
    return false;
  }
  const json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    s.error = "malformed stream event: " + data.substr(0, 100);
    return false;
  }
  if (j.contains("error")) {
    s.error = "stream error: " + j["error"].value("message", "");
    return false;
  }
  // NOTE: as vLLM's benchmark, the first chunk with a choice is the first token, even when
  // its text is empty (a partial UTF-8 sequence, a token that renders as nothing).
  if (j.contains("choices") && !j["choices"].empty()) {
    if (chunks++ == 0) s.ttft_s = seconds_since(t0);
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    s.prompt_tokens = j["usage"].value("prompt_tokens", 0);
    s.output_tokens = j["usage"].value("completion_tokens", 0);
  }
  return true;
}

}  // namespace

LoadTarget parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    fail("--url must start with http:// (got '%s')", url.c_str());
  }
  std::string rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  LoadTarget t;
  const size_t colon = rest.rfind(':');
  t.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 1 || p > 65535) {
      fail("invalid port in --url '%s'", url.c_str());
    }
    t.port = static_cast<int32_t>(p);
  }
  if (t.host.empty()) fail("no host in --url '%s'", url.c_str());
  return t;
}

void SseParser::feed(std::string_view bytes, std::vector<std::string>& events) {
  pending_.append(bytes);
  size_t start = 0, nl;
  while ((nl = pending_.find('\n', start)) != std::string::npos) {
    std::string_view line(pending_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 5) == "data:") {
      line.remove_prefix(5);
      if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      events.emplace_back(line);
    }
    start = nl + 1;
  }
  pending_.erase(0, start);
}

struct LoadClient::Impl {
  LoadTarget target;
  httplib::Client http;
  explicit Impl(const LoadTarget& t) : target(t), http(t.host, t.port) {
    http.set_read_timeout(600, 0);
    http.set_keep_alive(true);
  }
};

LoadClient::LoadClient(const LoadTarget& target) : impl_(std::make_unique<Impl>(target)) {}
LoadClient::~LoadClient() = default;

RequestSample LoadClient::send(const LoadRequest& r) {
  json body = {{"prompt", r.prompt},
               {"max_tokens", r.max_tokens},
               {"temperature", 0.0},
               {"ignore_eos", r.ignore_eos},
               {"stream", r.stream}};
  if (r.stream) body["stream_options"] = {{"include_usage", true}};
  if (!impl_->target.model.empty()) body["model"] = impl_->target.model;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  req.set_header("Content-Type", "application/json");
  if (!impl_->target.api_key.empty())
    req.set_header("Authorization", "Bearer " + impl_->target.api_key);
  RequestSample s;
  std::string raw;  // the body as received (error bodies, non-streamed responses)
  SseParser sse;
  std::vector<std::string> events;
  int32_t chunks = 0;
  bool done = false, stop = false;
  const Clock::time_point t0 = Clock::now();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (raw.size() < (1u << 20)) raw.append(data, len);
    if (!r.stream) return true;
    sse.feed(std::string_view(data, len), events);
    for (const std::string& e : events) stop = stop || !take_event(e, t0, s, chunks, done);
    events.clear();
    return !stop || done;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = impl_->http.send(req, res, err);
  s.e2e_s = seconds_since(t0);
  if (!sent && !(done && err == httplib::Error::Canceled)) {
    if (s.error.empty()) s.error = "transport: " + httplib::to_string(err);
    return s;
  }
  if (res.status != 200) {
    s.error = error_message(res.status, raw.empty() ? res.body : raw);
    return s;
  }
  if (r.stream) {
    if (!s.error.empty()) return s;
    if (!done) {
      s.error = "the stream ended without [DONE]";
      return s;
    }
    if (chunks == 0) s.ttft_s = s.e2e_s;
    if (s.output_tokens == 0) s.output_tokens = chunks;
  } else {
    const json j = json::parse(raw, nullptr, false);
    if (j.is_discarded() || !j.contains("usage")) {
      s.error = "malformed response: " + raw.substr(0, 100);
      return s;
    }
    s.prompt_tokens = j["usage"].value("prompt_tokens", 0);
    s.output_tokens = j["usage"].value("completion_tokens", 0);
    s.ttft_s = s.e2e_s;
  }
  s.ok = true;
  return s;
}

PromptBuilder::PromptBuilder(std::vector<std::string> words, uint64_t seed)
    : words_(std::move(words)), rng_(seed) {
  if (words_.empty()) fail("no words to build prompts from");
}

std::string PromptBuilder::make(int32_t n_words) {
  std::string out;
  for (int32_t i = 0; i < n_words; ++i) {
    if (i) out += ' ';
    out += words_[rng_() % words_.size()];
  }
  return out;
}

std::vector<std::string> default_words() {
  return split_words(
      "the a one day little girl boy named lily tim went to park and saw big red ball she "
      "was happy he wanted play with his friend sun sky tree bird dog cat mom dad said "
      "look at that they ran jumped laughed under over blue green small house garden "
      "flower water fish toy box car book sweet cake apple time found made very good nice "
      "kind funny brave tall short fast slow yes no thank you please help share love");
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

int32_t calibrate_prompt_words(LoadClient& client, PromptBuilder& prompts, int32_t target) {
  int32_t words = std::max(1, target);
  for (int round = 0; round < 3; ++round) {
    const RequestSample s = client.send({prompts.make(words), 1, false, true});
    if (!s.ok) fail("calibration request failed: %s", s.error.c_str());
    if (s.prompt_tokens <= 0) fail("the server reported no prompt tokens");
    const double per_word = static_cast<double>(s.prompt_tokens) / words;
    const int32_t next = std::max(
        1, static_cast<int32_t>(std::lround(words + (target - s.prompt_tokens) / per_word)));
    if (next == words) break;
    words = next;
  }
  return words;
}

}  // namespace quanta::api
