// The comparison against llama.cpp's golden outputs of every shared model: logits at every
// prompt position (top-16), the full last-position logits, and the greedy continuation, run
// on the active kernel path. Used by the end-to-end golden test (every path this machine
// runs) and by kernels_tests (the SIMDe-emulated paths).
#pragma once

#include <vector>

namespace quanta::testlib {

struct GoldenModel {
  const char* name;  // golden/<name>.json and the model it names
  float tolerance;   // absolute logit tolerance (see golden_logits.cc)
};

// Every shared model with a golden file, with its tolerance.
const std::vector<GoldenModel>& golden_models();

// Loads the model (repacked for the active path) and checks it against its golden file with
// gtest assertions; prints the largest difference seen.
void expect_golden_logits(const GoldenModel& m);

}  // namespace quanta::testlib
