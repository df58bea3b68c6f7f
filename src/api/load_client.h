// The client side of `quanta loadtest`: target URL parsing, an incremental server-sent-events
// parser, one timed /v1/completions request (streamed for TTFT), and prompts built from words
// to about a target number of the server's tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "api/load_stats.h"

namespace quanta::api {

struct LoadTarget {
  std::string host;
  int32_t port = 80;
  std::string api_key;  // "" = none
  std::string model;    // "" = omit the field
};

// "http://HOST[:PORT][/]" -> host and port; throws quanta::Error otherwise (https unsupported).
LoadTarget parse_url(const std::string& url);

// Splits a byte stream into the payloads of its "data:" lines, whatever the chunking.
class SseParser {
 public:
  void feed(std::string_view bytes, std::vector<std::string>& events);

 private:
  std::string pending_;  // an incomplete line
};

struct LoadRequest {
  std::string prompt;
  int32_t max_tokens = 16;
  bool stream = true;
  bool ignore_eos = true;
};

// One keep-alive connection to the server; not thread-safe (one per worker).
class LoadClient {
 public:
  explicit LoadClient(const LoadTarget& target);
  ~LoadClient();
  // Sends one greedy completion request and times it. Never throws: failures (transport,
  // non-200 status, an error event, a stream without [DONE]) come back with ok = false.
  RequestSample send(const LoadRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Prompts of random words from a pool (a default English list, or a file's words).
class PromptBuilder {
 public:
  PromptBuilder(std::vector<std::string> words, uint64_t seed);
  std::string make(int32_t n_words);

 private:
  std::vector<std::string> words_;
  std::mt19937_64 rng_;
};

std::vector<std::string> default_words();
std::vector<std::string> split_words(const std::string& text);

// The number of words whose prompts the server tokenizes to about `target_tokens` (asks the
// server twice with max_tokens 1 and reads usage.prompt_tokens). Throws quanta::Error when
// the server does not answer.
int32_t calibrate_prompt_words(LoadClient& client, PromptBuilder& prompts, int32_t target_tokens);

}  // namespace quanta::api
