// Perplexity and KL divergence with llama-perplexity's protocol: the token stream (BOS
// prepended) is cut into n_tokens / n_ctx windows of n_ctx tokens, each window's first token is
// replaced by BOS and the window evaluated from position 0, and positions n_ctx/2 .. n_ctx-2
// are scored against the next token. With a base model, the base runs on the same windows
// and KL(base || model), same-top rate etc. are accumulated (engine/perplexity_stats.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/perplexity_stats.h"
#include "models/model.h"
#include "kv/kv_transform.h"
#include "quant/types.h"
#include "tokenizer/tokenizer.h"

namespace quanta::ppl {

struct PerplexityOptions {
  int32_t n_ctx = 512;         // window length (>= 4)
  int32_t max_chunks = 0;      // windows to evaluate; 0 = all n_tokens / n_ctx
  int32_t n_threads = 0;       // 0 = all hardware threads
  int32_t batch_tokens = 512;  // tokens per forward pass: max(1, batch_tokens / n_ctx) windows
  int32_t bos = -1;            // token that replaces each window's first; -1 = keep it
  GgmlType kv_type = GgmlType::F32;       // the model's KV cache
  GgmlType base_kv_type = GgmlType::F32;  // the base model's KV cache
  // Key transform of quantized caches (both models; see models::ContextOptions).
  kv::KeyTransformMode kv_transform = kv::kDefaultKeyTransform;
};

struct PerplexityResult {
  int32_t n_ctx = 0;
  int32_t n_chunks = 0;  // windows evaluated
  int64_t n_tokens = 0;  // tokens in the whole stream
  double seconds = 0.0;  // evaluation time (both models)
  Summary summary;       // perplexity, tokens scored (count), and the base figures
};

// (windows done, windows in all, running perplexity) after each forward pass.
using ProgressFn = std::function<void(int32_t, int32_t, double)>;

// The stream llama-perplexity scores: the whole text tokenized at once with the vocabulary's
// BOS (special tokens in the text are plain text).
std::vector<int32_t> tokenize_for_perplexity(const tokenizer::Tokenizer& tok,
                                             const std::string& text);

// Evaluates `model` (and `base`, when not null, on the same windows). Throws quanta::Error
// when the stream has fewer than 2 * n_ctx tokens (as llama-perplexity), n_ctx < 4, or the
// two vocabularies differ in size.
PerplexityResult evaluate_perplexity(const models::Model& model, const std::vector<int32_t>& tokens,
                                     const PerplexityOptions& options,
                                     const models::Model* base = nullptr,
                                     const ProgressFn& progress = nullptr);

// One JSON object: perplexity, perplexity_uncertainty, tokens_scored, n_ctx, n_chunks,
// seconds, and with a base base_perplexity, kl_mean, kl_uncertainty, kl_p99, kl_p999,
// kl_median, kl_max, same_top, same_top_uncertainty (fractions), rms_p_diff, ln_ppl_ratio.
std::string perplexity_json(const PerplexityResult& r);
// llama-perplexity-style text report (several lines).
std::string perplexity_report(const PerplexityResult& r);

}  // namespace quanta::ppl
