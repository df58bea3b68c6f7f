// Reader for the llama.cpp reference outputs in $QUANTA_SHARED/golden/<model>.json
// (format in that folder's README).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quanta::testlib {

struct GoldenTop {
  float logsumexp = 0.0f;
  std::vector<int32_t> ids;   // 16 ids, highest logit first
  std::vector<float> logits;  // their logits
};

struct GoldenCase {
  std::string prompt;
  bool add_bos = true;
  std::vector<int32_t> tokens;       // prompt ids, BOS included
  std::vector<GoldenTop> top;        // per prompt position: next-token top-16
  std::vector<float> last_logits;    // [n_vocab] at the last prompt position
  std::vector<int32_t> greedy;       // argmax continuation
  std::string greedy_text;
  std::vector<float> greedy_gap;     // top-1 minus top-2 logit per greedy step
};

struct Golden {
  std::string model;
  int32_t n_vocab = 0;
  std::vector<GoldenCase> cases;
};

// Loads golden/<name>.json; fails the test (fatal) when missing or malformed.
Golden load_golden(const std::string& name);

}  // namespace quanta::testlib
