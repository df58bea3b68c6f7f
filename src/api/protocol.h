// The OpenAI request schema: parses and validates /v1/completions and /v1/chat/completions
// bodies into an ApiRequest (a serve::GenerationRequest plus what only the API layer needs),
// and the ApiError that becomes an OpenAI-style error body.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "serve/engine.h"

namespace quanta::api {

// An error answered to the client: {"error":{"message","type","param","code":null}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "",
           std::string type = "invalid_request_error")
      : std::runtime_error(message),
        status(status),
        param(std::move(param)),
        type(std::move(type)) {}
  int status;         // HTTP status (400, 401, 404, 413, 429, 503...)
  std::string param;  // the offending field, "" for none (serialized as null)
  std::string type;   // OpenAI error type
};

// The JSON body of an error, as OpenAI writes it.
std::string error_body(const std::string& message, const std::string& type,
                       const std::string& param);
std::string error_body(const ApiError& e);

enum class Endpoint { kCompletions, kChat };

struct ChatMessage {
  std::string role;  // system | developer | user | assistant
  std::string content;
};

// A parsed request. The engine request's prompt is filled by the server (tokenization needs
// the tokenizer and the chat template); max_tokens is unset when the client gave none.
struct ApiRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;                   // as sent (may be empty)
  std::string prompt_text;             // completions with a text prompt
  std::vector<int32_t> prompt_tokens;  // completions with a token-array prompt
  bool prompt_is_tokens = false;
  std::vector<ChatMessage> messages;  // chat
  std::optional<int32_t> max_tokens;  // max_tokens or max_completion_tokens
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage
  bool logprobs = false;         // any logprobs asked
  serve::GenerationRequest gen;  // sampling, n, stop, ignore_eos, top_logprobs
};

// Parses a request body. Throws ApiError(400) naming the bad field. `seed_if_absent` is the
// sampling seed used when the client sends none (callers pass a random one).
ApiRequest parse_request(Endpoint endpoint, const std::string& body, uint64_t seed_if_absent);

// Largest n accepted.
inline constexpr int32_t kMaxChoices = 16;

}  // namespace quanta::api
