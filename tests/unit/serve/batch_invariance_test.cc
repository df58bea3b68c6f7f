// Batch invariance on stories260K: the greedy outputs (tokens and their log-probabilities, bit
// for bit) of 16 concurrent requests with different prompts equal the same requests run one at
// a time, with the prefix cache off, on (cold and warm), and equal llama.cpp's golden greedy
// continuations for the golden prompts; and concurrent == sequential on random-weight GQA
// models with Q4_0, Q4_K_M and Q8_0 weights and F16, Q8_0 and Q4_0 KV caches.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "models/synthetic.h"
#include "serve_test_util.h"
#include "testlib/golden.h"
#include "tokenizer/tokenizer.h"

namespace quanta::serve {
namespace {

using testing::collect;
using testing::stories;
using testing::stories_tokenizer;

constexpr int32_t kMaxTokens = 32;  // the golden continuations' length

struct Output {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

std::vector<std::vector<int32_t>> prompts(const testlib::Golden& golden) {
  std::vector<std::vector<int32_t>> p;
  for (const testlib::GoldenCase& gc : golden.cases) p.push_back(gc.tokens);
  // Different lengths (1 to ~4 blocks), several sharing a prefix with a golden prompt, so the
  // warm prefix cache serves whole blocks computed in other batches.
  for (const char* text : {
           "Once upon a time, there was a little robot named Bolt. He liked to",
           "Once upon a time, there was a little robot named Bolt. One day",
           "Tom had a red ball.",
           "The sun was hot, so the children went to the lake to swim and play in the water.",
           "Mia",
           "Once upon a time, in a big forest, there lived a tiny rabbit who loved carrots more "
           "than anything else in the whole world. Every morning he",
           "The dog barked at the cat, and the cat ran up the tree. The dog was sad because",
           "Sam and his mom baked a cake. It was",
           "In the garden, a little bee found a flower.",
           "Lily wanted to fly like a bird. She asked her dad",
           "The old man sat on the bench and looked at the sky. He saw a",
           "A big truck came down the road",
           "Ben and Sue found a box in the park. Inside the box there was",
       }) {
    p.push_back(stories_tokenizer().encode(text, /*add_special=*/true));
  }
  return p;
}

EngineOptions options(bool prefix_caching) {
  EngineOptions o = testing::test_options();
  o.n_ctx = 512;
  o.max_running = 16;
  o.max_batch_tokens = 64;  // prompts are chunked and mixed with decodes
  o.n_threads = 2;
  o.prefix_caching = prefix_caching;
  return o;
}

// Runs every prompt greedily on `engine`, all at once or one after another.
std::vector<Output> run(Engine& engine, const std::vector<std::vector<int32_t>>& ps,
                        bool concurrent) {
  std::vector<std::shared_ptr<RequestStream>> streams(ps.size());
  std::vector<Output> out(ps.size());
  const auto take = [&](size_t i) {
    const testing::Collected c = collect(*streams[i]);
    EXPECT_EQ(c.choices.at(0).finish, FinishReason::kLength) << "request " << i;
    for (const TokenLogprob& lp : c.choices.at(0).logprobs) {
      out[i].tokens.push_back(lp.token);
      out[i].logprobs.push_back(lp.logprob);
    }
  };
  for (size_t i = 0; i < ps.size(); ++i) {
    GenerationRequest r;
    r.prompt = ps[i];
    r.max_tokens = kMaxTokens;
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    r.top_logprobs = 0;
    streams[i] = engine.submit(std::move(r));
    if (!concurrent) take(i);
  }
  for (size_t i = 0; concurrent && i < ps.size(); ++i) take(i);
  return out;
}

void expect_same(const std::vector<Output>& got, const std::vector<Output>& want,
                 const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << what << ", request " << i;
    // Same tokens and the same arithmetic: the log-probabilities agree bit for bit.
    EXPECT_EQ(got[i].logprobs, want[i].logprobs) << what << ", request " << i;
  }
}

TEST(BatchInvariance, ConcurrentGreedyEqualsSequentialAndGolden) {
  const testlib::Golden golden = testlib::load_golden("stories260K");
  const std::vector<std::vector<int32_t>> ps = prompts(golden);
  ASSERT_EQ(ps.size(), 16u);

  auto no_cache = Engine::create(stories(), stories_tokenizer(), options(false));
  const std::vector<Output> reference = run(*no_cache, ps, /*concurrent=*/false);
  expect_same(run(*no_cache, ps, /*concurrent=*/true), reference, "concurrent, no cache");

  auto cached = Engine::create(stories(), stories_tokenizer(), options(true));
  expect_same(run(*cached, ps, /*concurrent=*/true), reference, "concurrent, cold cache");
  expect_same(run(*cached, ps, /*concurrent=*/true), reference, "concurrent, warm cache");
  expect_same(run(*cached, ps, /*concurrent=*/false), reference, "sequential, warm cache");
  EXPECT_NE(cached->metrics_text().find("quanta_prefix_cache_hit_rate 0."), std::string::npos);

  // The golden continuations (llama.cpp, one sequence), compared as the golden test does:
  // until the top-2 gap is too small for the F32 tolerance to decide.
  for (size_t ci = 0; ci < golden.cases.size(); ++ci) {
    const testlib::GoldenCase& gc = golden.cases[ci];
    for (size_t step = 0; step < gc.greedy.size(); ++step) {
      if (gc.greedy_gap[step] <= 2e-3f) break;
      ASSERT_EQ(reference[ci].tokens.at(step), gc.greedy[step])
          << "golden case " << ci << " step " << step;
    }
  }
}

struct QuantCase {
  const char* name;
  GgmlType weights;
  bool llama_mix;  // llama-quantize's per-tensor types (Q4_K_M: some Q6_K)
  GgmlType kv;
};

class QuantizedBatchInvariance : public ::testing::TestWithParam<QuantCase> {};

// Random-weight GQA models: the GEMM tiles of every weight type used in deployments and each
// KV cache type must give a token the same bits whatever shares its batch.
TEST_P(QuantizedBatchInvariance, ConcurrentEqualsSequential) {
  const QuantCase qc = GetParam();
  models::SyntheticSpec spec = models::synthetic_preset("default");
  spec.n_embd = 256;  // K-quants need rows of 256
  spec.n_ff = 512;
  spec.type = qc.weights;
  spec.llama_mix = qc.llama_mix;
  spec.n_ctx = 256;
  const std::string path = testlib::temp_dir() + "/serve_" + qc.name + ".gguf";
  models::write_synthetic_model(spec, path);
  const auto model = models::Model::load(path);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(model->file());
  ASSERT_LT(model->hparams().n_head_kv, model->hparams().n_head);
  std::vector<std::vector<int32_t>> ps;
  for (int32_t i = 0; i < 8; ++i) {
    std::vector<int32_t> p = {tok.bos()};
    for (int32_t j = 0; j < 5 + 9 * i; ++j) p.push_back(3 + (j * 37 + i * 11) % 250);
    ps.push_back(p);
  }
  EngineOptions o = options(true);
  o.n_ctx = 256;
  o.kv_type = qc.kv;
  auto engine = Engine::create(*model, tok, o);
  const std::vector<Output> reference = run(*engine, ps, /*concurrent=*/false);
  expect_same(run(*engine, ps, /*concurrent=*/true), reference, "concurrent");
  o.prefix_caching = false;
  o.max_batch_tokens = 7;  // odd chunk sizes
  auto small = Engine::create(*model, tok, o);
  expect_same(run(*small, ps, /*concurrent=*/true), reference, "concurrent, 7-token steps");
}

INSTANTIATE_TEST_SUITE_P(
    Types, QuantizedBatchInvariance,
    ::testing::Values(QuantCase{"q4_0_f16kv", GgmlType::Q4_0, false, GgmlType::F16},
                      QuantCase{"q4_k_m_q8kv", GgmlType::Q4_K, true, GgmlType::Q8_0},
                      QuantCase{"q8_0_q4kv", GgmlType::Q8_0, false, GgmlType::Q4_0}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace quanta::serve
