// Request construction (token storage reserved once) and status names.
#include "engine/request.h"

#include <utility>

namespace quanta {

Request::Request(int64_t id, int64_t arrival, std::vector<int32_t> prompt, int32_t max_tokens,
                 int32_t block_size, int32_t max_model_len)
    : id(id),
      arrival(arrival),
      n_prompt(static_cast<int32_t>(prompt.size())),
      max_tokens(max_tokens),
      tokens(std::move(prompt)),
      table(block_size, max_model_len) {
  tokens.reserve(static_cast<size_t>(n_prompt) + max_tokens);
  block_hashes.reserve(static_cast<size_t>(tokens.capacity() / block_size) + 1);
}

const char* to_string(RequestStatus status) {
  switch (status) {
    case RequestStatus::kWaiting:
      return "waiting";
    case RequestStatus::kRunning:
      return "running";
    case RequestStatus::kPreempted:
      return "preempted";
    case RequestStatus::kFinished:
      return "finished";
  }
  return "?";
}

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace quanta
