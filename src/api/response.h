// OpenAI response bodies: the non-streaming completion and chat completion objects and the
// server-sent-event chunks of a stream, built from the engine's ChoiceDeltas and Usage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/protocol.h"
#include "serve/engine.h"

namespace quanta::api {

// What every response object of one request shares.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;       // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
  bool logprobs = false;       // include logprobs objects (else null)
  bool include_usage = false;  // streams: "usage": null on each chunk, then a usage chunk
};

// A new response id with the endpoint's prefix: "cmpl-" / "chatcmpl-" + 24 random characters.
std::string new_response_id(Endpoint endpoint);

// One choice gathered from its deltas (non-streaming).
struct ChoiceResult {
  std::string text;
  std::vector<serve::TokenLogprob> logprobs;
  FinishReason finish = FinishReason::kNone;
};

// "stop" / "length" (kCancelled never reaches a client as a finish reason).
const char* finish_reason_name(FinishReason reason);

// The whole response object of a non-streaming request.
std::string response_body(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                          const serve::Usage& usage);

// Per-choice state of a stream.
struct StreamChoiceState {
  bool role_sent = false;   // chat: the first delta carries the assistant role
  int64_t text_offset = 0;  // completions logprobs: offset of the next token's text
};

// The SSE events ("data: {...}\n\n", possibly several) for one delta of a stream.
std::string stream_events(const ResponseMeta& meta, const serve::ChoiceDelta& delta,
                          StreamChoiceState& state);
// The final usage chunk (empty choices) of a stream that asked for include_usage.
std::string stream_usage_event(const ResponseMeta& meta, const serve::Usage& usage);
// An error inside a stream ("data: {"error":...}\n\n").
std::string stream_error_event(const ApiError& error);
inline constexpr const char* kStreamDone = "data: [DONE]\n\n";

}  // namespace quanta::api
