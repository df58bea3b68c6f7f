// A generation request as the scheduler tracks it: its tokens (prompt, then outputs), how many
// of them have K/V rows computed, its block table and its lifecycle status.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/block_table.h"

namespace quanta {

enum class RequestStatus : uint8_t {
  kWaiting,    // queued, never admitted
  kRunning,    // admitted: holds blocks, gets tokens each step
  kPreempted,  // blocks freed; queued again at the front, to recompute its tokens
  kFinished,
};

enum class FinishReason : uint8_t {
  kNone,
  kLength,     // max_tokens generated (or the sequence reached max_model_len)
  kStop,       // the caller said so (end-of-generation token, stop string)
  kCancelled,  // cancel(): client gone, shutdown
};

const char* to_string(RequestStatus status);
const char* to_string(FinishReason reason);

// NOTE: vLLM v1's request model. No prefill or decode phase: a request has n_tokens() known
// tokens, of which num_computed_tokens have K/V rows in its block table; each step computes
// some of the rest (a prompt chunk, or the one token sampled last step). Preemption frees the
// blocks and resets num_computed_tokens to 0; the generated tokens stay in `tokens`, so they
// are recomputed along with the prompt and generation resumes where it stopped.
// A decode may carry draft tokens: its chunk computes the last token and the drafts, and the
// result says how many drafts were accepted; rejected positions are rolled back.
struct Request {
  Request(int64_t id, int64_t arrival, std::vector<int32_t> prompt, int32_t max_tokens,
          int32_t block_size, int32_t max_model_len);

  int64_t id;
  int64_t arrival;       // order of Scheduler::add calls (0, 1, 2, ...)
  int64_t fork_of = -1;  // sibling whose prompt blocks this one shares (n > 1), or -1
  int32_t n_prompt;
  int32_t max_tokens;           // generated tokens at most
  std::vector<int32_t> tokens;  // prompt then outputs; capacity n_prompt + max_tokens, so
                                // pointers into it stay valid
  int32_t num_computed_tokens = 0;
  RequestStatus status = RequestStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  int32_t n_cached_tokens = -1;  // tokens reused at first admission (prefix cache or sibling)
  int32_t n_preemptions = 0;
  std::vector<uint64_t> block_hashes;  // chained hashes of the full blocks of `tokens`
  kv::BlockTable table;

  // Per-step bookkeeping of the scheduler.
  int64_t scheduled_step = -1;  // last step that gave this request tokens
  bool awaiting_token = false;  // scheduled with a chunk that ends at its last token
  bool result_seen = false;     // update() validation
  bool cancel_requested = false;

  // Speculative decoding (vLLM v1's spec_token_ids): draft tokens proposed after the last
  // step by the caller (Scheduler::set_draft), used by the next step only.
  std::vector<int32_t> draft;       // proposed continuation of `tokens`
  std::vector<int32_t> spec_input;  // [1 + n_draft_scheduled] last token then the drafts
                                    // scheduled this step (the chunk's token ids)
  int32_t n_draft_scheduled = 0;    // drafts in this step's chunk
  int32_t n_accepted = 0;           // of them accepted, from this step's result

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t n_output() const { return n_tokens() - n_prompt; }
  const int32_t* output() const { return tokens.data() + n_prompt; }
  bool finished() const { return status == RequestStatus::kFinished; }
};

}  // namespace quanta
