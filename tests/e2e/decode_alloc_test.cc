// "Nothing is allocated per token": counts global operator new calls across decode steps
// (forward pass + sampling) after the prompt, on real models of each code path.
#include <gtest/gtest.h>

#include <vector>

#include "engine/generator.h"
#include "engine/sampler.h"
#include "models/context.h"
#include "models/model.h"
#include "testlib/alloc_counter.h"
#include "testlib/shared_data.h"

namespace quanta {
namespace {

class DecodeAllocations : public ::testing::TestWithParam<const char*> {};

TEST_P(DecodeAllocations, DecodeStepsAllocateNothing) {
  const auto model = models::Model::load(testlib::shared_path(std::string("models/") + GetParam()));
  models::ContextOptions opts;
  opts.n_ctx = 256;
  opts.n_threads = 2;
  models::Context ctx(*model, opts);
  Generator gen(ctx);
  SamplingParams params;  // temperature 0.8, top-k, top-p, min-p: the full sampling chain
  params.repeat_penalty = 1.1f;
  params.seed = 7;
  Sampler sampler(ctx.n_vocab(), params);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  const float* logits = gen.prefill(prompt.data(), static_cast<int32_t>(prompt.size()));
  int32_t token = sampler.sample(logits);
  logits = gen.decode(token);  // first decode step may warm up lazily-initialised state

  const int64_t before = testlib::allocation_count();
  for (int step = 0; step < 48; ++step) {
    token = sampler.sample(logits);
    sampler.accept(token);
    logits = gen.decode(token);
  }
  const int64_t after = testlib::allocation_count();
  EXPECT_EQ(after - before, 0) << "allocations during 48 decode steps";
  EXPECT_EQ(gen.n_past(), static_cast<int32_t>(prompt.size()) + 49);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, DecodeAllocations,
                         ::testing::Values("stories260K.gguf", "stories260K-Q5_0mix.gguf",
                                           "syn-llama-gqa-q4_k_m.gguf", "syn-qwen2-f32.gguf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           name = name.substr(0, name.find('.'));
                           for (char& c : name) c = (c == '-') ? '_' : c;
                           return name;
                         });

// The counter itself works (so the test above can fail).
TEST(DecodeAllocations, CounterCountsAllocations) {
  const int64_t before = testlib::allocation_count();
  void* p = ::operator new(64);  // an explicit call: the compiler may not elide it
  ::operator delete(p);
  EXPECT_EQ(testlib::allocation_count() - before, 1);
}

}  // namespace
}  // namespace quanta
