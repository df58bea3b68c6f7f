// Single-sequence generation over a Context: prompt prefill in chunks of n_batch, then one
// decode step per token with the sampler. Buffers (batch arrays, block table) are sized at
// construction, so decode steps allocate nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/sampler.h"
#include "kv/block_table.h"
#include "models/context.h"

namespace quanta {

struct GenerateStats {
  int32_t n_prompt = 0;
  int32_t n_generated = 0;
  double prompt_seconds = 0.0;  // prefill time (until the first token's logits)
  double ttft_seconds = 0.0;    // prefill + first sample
  double decode_seconds = 0.0;  // generation of the remaining tokens
  bool stopped_at_eog = false;
};

class Generator {
 public:
  explicit Generator(models::Context& ctx);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Forgets the sequence (releases its KV blocks).
  void reset();
  int32_t n_past() const { return table_.n_tokens(); }
  // Keeps the first n_past tokens of the sequence (0 <= n_past <= n_past()) and releases the
  // KV blocks past them: speculative decoding's rollback of rejected draft tokens. The rows
  // beyond n_past are overwritten by the next prefill/decode.
  void truncate(int32_t n_past);
  // The sequence's block table (block counts for tests and statistics).
  const kv::BlockTable& table() const { return table_; }
  models::Context& context() { return ctx_; }

  // Appends tokens to the sequence; returns logits [n, n_vocab] for every token when
  // all_logits, else the last token's logits [n_vocab]. Throws quanta::Error when the
  // context is full.
  const float* prefill(const int32_t* tokens, int32_t n, bool all_logits = false);
  // Appends one token; returns its logits [n_vocab].
  const float* decode(int32_t token);

  // Prefills `prompt`, then samples up to n_predict tokens, calling on_token for each (stop
  // early when it returns false, or at an end-of-generation token when is_eog is set).
  GenerateStats generate(const std::vector<int32_t>& prompt, int32_t n_predict, Sampler& sampler,
                         const std::function<bool(int32_t)>& on_token,
                         const std::function<bool(int32_t)>& is_eog = nullptr);

 private:
  const float* run_chunk(const int32_t* tokens, int32_t n, bool all_logits);

  models::Context& ctx_;
  kv::BlockTable table_;
  const kv::BlockTable* tables_[1];
  std::vector<int32_t> positions_;    // [n_batch]
  std::vector<int32_t> seq_;          // [n_batch], all zero
  std::vector<uint8_t> want_logits_;  // [n_batch]
};

}  // namespace quanta
