// `quanta bench --spec`: speculative against plain decoding of the same prompt, greedy by
// default: acceptance, tokens per target pass, tokens/s of both, the measured speedup and the
// papers' predicted speedup (1 - a^(k+1)) / ((1 - a)(k c + 1)), and whether the outputs match.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/speculative.h"
#include "kv/kv_transform.h"
#include "models/model.h"
#include "quant/types.h"

namespace quanta::bench {

struct SpecBenchOptions {
  std::vector<int32_t> prompt;  // tokens (non-empty)
  int32_t n_gen = 128;          // tokens generated per run (end-of-generation ignored)
  SpecOptions spec;
  int32_t lookup_ngram = 0;  // > 0: n-gram lookup instead of the draft model
  SamplingParams sampling;   // default: greedy
  int32_t repetitions = 3;
  int32_t n_threads = 0;
  GgmlType kv_type = GgmlType::F16;
  kv::KeyTransformMode kv_transform = kv::kDefaultKeyTransform;  // quantized kv_type only
  std::function<void(const char* phase, int32_t rep)> on_progress;

  SpecBenchOptions() { sampling.temperature = 0.0f; }
};

struct SpecBenchResult {
  std::string drafter;  // "draft model" or "lookup N-gram"
  int32_t n_prompt = 0, n_gen = 0;
  double plain_tps = 0.0;        // median decode tokens/s without speculation
  double spec_tps = 0.0;         // median decode tokens/s with speculation
  double draft_tps = 0.0;        // median plain decode tokens/s of the draft model (0: n-gram)
  double acceptance = 0.0;       // accepted / drafted tokens (llama.cpp's figure)
  double a = 0.0;                // per-token acceptance: accepted / tested (the papers' alpha)
  double tokens_per_pass = 0.0;  // generated tokens per target pass
  double mean_k = 0.0;           // drafted tokens per target pass
  double c = 0.0;                // draft step cost / target step cost
  double predicted = 0.0;        // predicted_speedup(a, round(mean_k), c)
  double v = 0.0;                // measured verify pass cost / target decode step cost
  double predicted_v = 0.0;      // the same with the verify pass costing v decode steps
  bool identical = false;        // speculative tokens == plain tokens (meaningful when greedy)
  SpecStats last;                // statistics of the last speculative run
};

// `draft` may be null with lookup_ngram > 0. Decode tokens/s counts the n_gen tokens over the
// time after the prompt's prefill.
SpecBenchResult run_spec_bench(const models::Model& target, const models::Model* draft,
                               const SpecBenchOptions& o);

// A Markdown table row (with header) and a short note on what the columns mean.
std::string spec_markdown(const std::string& model, const SpecBenchResult& r);

}  // namespace quanta::bench
