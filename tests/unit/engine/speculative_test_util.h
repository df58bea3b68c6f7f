// Shared fixtures of the speculative decoding tests: stories260K as target, its shipped
// quantizations as drafts, contexts sized for K <= 8, and plain greedy reference generation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/sampler.h"
#include "models/context.h"
#include "models/model.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace quanta::spec_test {

// AddressSanitizer builds run the model several times slower: the tests then use smaller
// sizes (still checking everything, with less statistical power).
#ifdef __SANITIZE_ADDRESS__
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

inline const models::Model& load_shared(const std::string& name) {
  static std::vector<std::pair<std::string, std::unique_ptr<models::Model>>> cache;
  for (const auto& [n, m] : cache) {
    if (n == name) return *m;
  }
  cache.emplace_back(name, models::Model::load(testlib::shared_path("models/" + name)));
  return *cache.back().second;
}

inline const models::Model& target_model() {
  return load_shared("stories260K.gguf");
}

inline models::ContextOptions spec_options(int32_t n_ctx = 512) {
  models::ContextOptions o;
  o.n_ctx = n_ctx;
  o.n_batch = 64;
  o.n_outputs = 16;
  o.n_threads = 1;
  return o;
}

inline std::vector<int32_t> encode(const std::string& text) {
  static const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(target_model().file());
  return tok.encode(text, /*add_special=*/true);
}

inline SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

// Temperature 1, every filter off: the sampler draws from softmax(logits).
inline SamplingParams plain_sampling(uint64_t seed) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

// Plain (non-speculative) generation of n tokens, end-of-generation ignored.
inline std::vector<int32_t> plain_generate(models::Context& ctx, const std::vector<int32_t>& prompt,
                                           int32_t n, const SamplingParams& params) {
  Generator gen(ctx);
  Sampler sampler(ctx.n_vocab(), params);
  std::vector<int32_t> out;
  gen.generate(prompt, n, sampler, [&](int32_t t) { return out.push_back(t), true; });
  return out;
}

}  // namespace quanta::spec_test
