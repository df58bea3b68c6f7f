// Speculative decoding at temperature 0: token-for-token equality with plain greedy decoding
// for every draft (the model itself, its Q8_0 and Q5_0 quantizations, n-gram lookup), three
// prompts, K = 1..8 fixed (each K on one prompt) and adaptive (on all); KV rollback leaves both
// caches consistent; n-gram lookup; the verifier on hand-made distributions; the adaptive
// draft-length rule and the speedup formula.
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "engine/ngram.h"
#include "speculative_test_util.h"

namespace quanta {
namespace {

using spec_test::encode;
using spec_test::greedy_params;
using spec_test::load_shared;
using spec_test::spec_options;
using spec_test::target_model;

const char* const kPrompts[] = {
    "Once upon a time",
    "Lily and Tom went to the park. They saw a big dog. The dog",
    "The little bird was sad because",
};
constexpr int32_t kTokens = spec_test::kSanitized ? 64 : 200;

struct Outcome {
  std::vector<int32_t> tokens;
  SpecStats stats;
};

Outcome spec_generate(models::Context& target, Drafter& drafter, int32_t k_min, int32_t k_max,
                      const std::vector<int32_t>& prompt, int32_t n, const SamplingParams& params) {
  SpecOptions so;
  so.draft_min = k_min;
  so.draft_max = k_max;
  SpeculativeGenerator gen(target, drafter, so);
  Sampler sampler(target.n_vocab(), params);
  Outcome o;
  o.stats =
      gen.generate(prompt, n, sampler, [&](int32_t t) { return o.tokens.push_back(t), true; });
  // Rollback left the target cache holding exactly the sequence but its last token.
  const kv::BlockTable& table = gen.target().table();
  EXPECT_EQ(table.n_tokens(), static_cast<int32_t>(gen.history().size()) - 1);
  EXPECT_EQ(table.n_blocks(), (table.n_tokens() + table.block_size() - 1) / table.block_size());
  EXPECT_EQ(target.kv().pool().n_used(), table.n_blocks());
  return o;
}

// Every pairing: "self", a draft model file, or "ngram".
void expect_greedy_identical(const std::string& draft_name) {
  models::Context target(target_model(), spec_options());
  std::unique_ptr<models::Context> draft_ctx;
  if (draft_name != "ngram") {
    const models::Model& dm = draft_name == "self" ? target_model() : load_shared(draft_name);
    draft_ctx = std::make_unique<models::Context>(dm, spec_options());
  }
  int32_t drafted = 0, accepted = 0;
  for (int p = 0; p < 3; ++p) {
    const char* text = kPrompts[p];
    const std::vector<int32_t> prompt = encode(text);
    const std::vector<int32_t> want =
        spec_test::plain_generate(target, prompt, kTokens, greedy_params());
    ASSERT_EQ(want.size(), static_cast<size_t>(kTokens));
    for (int32_t k = 1; k <= 9; ++k) {
      const bool adaptive = k == 9;                 // 9: adaptive over [1, 8], on every prompt
      if (!adaptive && (k + p) % 3 != 0) continue;  // fixed K: each on one of the prompts
      std::unique_ptr<Drafter> drafter;
      if (draft_ctx) {
        drafter = std::make_unique<ModelDrafter>(*draft_ctx, target.n_vocab(), greedy_params());
      } else {
        drafter = std::make_unique<NgramDrafter>(2);
      }
      const Outcome o = spec_generate(target, *drafter, adaptive ? 1 : k, adaptive ? 8 : k, prompt,
                                      kTokens, greedy_params());
      EXPECT_EQ(o.tokens, want) << draft_name << ", prompt '" << text << "', K " << k;
      EXPECT_EQ(o.stats.n_generated, kTokens);
      EXPECT_LE(o.stats.n_passes, kTokens);
      drafted += o.stats.n_drafted;
      accepted += o.stats.n_accepted;
      if (draft_ctx) {  // the draft cache holds a prefix of the sequence, whole blocks only
        auto* md = static_cast<ModelDrafter*>(drafter.get());
        const kv::BlockTable& dt = md->generator().table();
        EXPECT_LE(dt.n_tokens(), static_cast<int32_t>(prompt.size()) + kTokens);
        EXPECT_EQ(dt.n_blocks(), (dt.n_tokens() + dt.block_size() - 1) / dt.block_size());
        EXPECT_EQ(draft_ctx->kv().pool().n_used(), dt.n_blocks());
      }
    }
  }
  std::printf("[ info ] %s: %d/%d draft tokens accepted (%.1f%%)\n", draft_name.c_str(), accepted,
              drafted, 100.0 * accepted / std::max(drafted, 1));
  if (draft_name == "self") {
    EXPECT_EQ(accepted, drafted);
  }
  EXPECT_GT(drafted, 0);
}

TEST(SpeculativeGreedy, SelfDraftEqualsPlainGreedy) {
  expect_greedy_identical("self");
}
TEST(SpeculativeGreedy, Q8DraftEqualsPlainGreedy) {
  expect_greedy_identical("stories260K-Q8_0mix.gguf");
}
TEST(SpeculativeGreedy, Q5DraftEqualsPlainGreedy) {
  expect_greedy_identical("stories260K-Q5_0mix.gguf");
}
TEST(SpeculativeGreedy, NgramLookupEqualsPlainGreedy) {
  expect_greedy_identical("ngram");
}

TEST(SpeculativeGreedy, StopsAtContextEndAndAtTheCallback) {
  const std::vector<int32_t> prompt = encode("Once upon a time");
  models::Context target(target_model(), spec_options(64));
  models::Context draft(load_shared("stories260K-Q8_0mix.gguf"), spec_options(64));
  const std::vector<int32_t> want = spec_test::plain_generate(target, prompt, 500, greedy_params());
  ModelDrafter drafter(draft, target.n_vocab(), greedy_params());
  const Outcome o = spec_generate(target, drafter, 8, 8, prompt, 500, greedy_params());
  EXPECT_EQ(o.tokens, want);  // both stop once the cache is full
  EXPECT_EQ(o.tokens.size(), 64 - prompt.size() + 1);
  SpeculativeGenerator gen(target, drafter, SpecOptions{});
  Sampler sampler(target.n_vocab(), greedy_params());
  int32_t seen = 0;
  const SpecStats st = gen.generate(prompt, 100, sampler, [&](int32_t) { return ++seen < 7; });
  EXPECT_EQ(seen, 7);
  EXPECT_EQ(st.n_generated, 7);
}

TEST(SpeculativeGreedy, RejectsContextsTooSmallForTheDraft) {
  models::ContextOptions o = spec_options();
  o.n_outputs = 4;
  models::Context target(target_model(), o);
  NgramDrafter drafter(3);
  SpecOptions so;
  so.draft_max = 4;
  EXPECT_THROW(SpeculativeGenerator(target, drafter, so), Error);
  so.draft_max = 3;
  so.draft_min = 4;
  EXPECT_THROW(SpeculativeGenerator(target, drafter, so), Error);
  so.draft_min = 1;
  SpeculativeGenerator ok(target, drafter, so);
  models::Context other(load_shared("syn-llama-mha-f32.gguf"), spec_options());
  EXPECT_THROW(ModelDrafter(other, target.n_vocab(), greedy_params()), Error);
}

TEST(Ngram, LookupFindsTheLatestEarlierOccurrence) {
  const std::vector<int32_t> t = {1, 2, 3, 9, 1, 2, 4, 5, 6, 1, 2};
  int32_t out[8];
  // After the second "1 2": 4 5 6 1 2, then periodically on: 4 5 6.
  ASSERT_EQ(ngram_lookup(t.data(), 11, 2, 8, out), 8);
  EXPECT_EQ(std::vector<int32_t>(out, out + 8), (std::vector<int32_t>{4, 5, 6, 1, 2, 4, 5, 6}));
  ASSERT_EQ(ngram_lookup(t.data(), 11, 2, 2, out), 2);
  EXPECT_EQ(out[0], 4);
  EXPECT_EQ(ngram_lookup(t.data(), 11, 3, 8, out), 0);  // "6 1 2" never occurred before
  EXPECT_EQ(ngram_lookup(t.data(), 2, 2, 8, out), 0);
  const std::vector<int32_t> run = {7, 7, 7};
  ASSERT_EQ(ngram_lookup(run.data(), 3, 1, 4, out), 4);  // match at i = 1, period 1
  EXPECT_EQ(std::vector<int32_t>(out, out + 4), (std::vector<int32_t>{7, 7, 7, 7}));
  const std::vector<int32_t> loop = {5, 1, 2, 1, 2};  // "1 2" at i = 1: period 2
  ASSERT_EQ(ngram_lookup(loop.data(), 5, 2, 5, out), 5);
  EXPECT_EQ(std::vector<int32_t>(out, out + 5), (std::vector<int32_t>{1, 2, 1, 2, 1}));
  EXPECT_THROW(NgramDrafter(0), Error);
}

// Logit rows [rows.size(), 4] from probabilities (log p; -inf for 0).
std::vector<float> logit_rows(const std::vector<std::vector<double>>& rows) {
  std::vector<float> out;
  for (const auto& r : rows) {
    for (double p : r) out.push_back(p > 0 ? static_cast<float>(std::log(p)) : -INFINITY);
  }
  return out;
}

TEST(Verifier, GreedyAcceptsWhileTheDraftIsTheArgmax) {
  const std::vector<float> logits =
      logit_rows({{0.1, 0.7, 0.1, 0.1}, {0.6, 0.2, 0.1, 0.1}, {0.1, 0.1, 0.1, 0.7}});
  Sampler sampler(4, greedy_params());
  Verifier v(4);
  Draft draft(4, 2);
  draft.point_mass = true;
  draft.tokens = {1, 2};  // 1 is row 0's argmax; 2 is not row 1's (0 is)
  draft.q_token = {1.0f, 1.0f};
  std::vector<int32_t> out;
  EXPECT_EQ(v.verify(sampler, logits.data(), draft, out), 1);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 0}));
  draft.tokens = {1, 0};  // both accepted: the bonus is row 2's argmax
  out.clear();
  EXPECT_EQ(v.verify(sampler, logits.data(), draft, out), 2);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 0, 3}));
}

TEST(Verifier, PointMassOnAnImpossibleTokenResamplesFromTheTarget) {
  // p(3) = 0: the draft token is always rejected and the residual is p itself.
  const std::vector<float> logits = logit_rows({{0.5, 0.3, 0.2, 0.0}, {0.25, 0.25, 0.25, 0.25}});
  Sampler sampler(4, spec_test::plain_sampling(9));
  Verifier v(4);
  Draft draft(4, 1);
  draft.point_mass = true;
  draft.tokens = {3};
  draft.q_token = {1.0f};
  std::vector<int> counts(4, 0);
  constexpr int kN = 20000;
  std::vector<int32_t> out;
  for (int i = 0; i < kN; ++i) {
    out.clear();
    ASSERT_EQ(v.verify(sampler, logits.data(), draft, out), 0);
    ASSERT_EQ(out.size(), 1u);
    ++counts[out[0]];
  }
  EXPECT_EQ(counts[3], 0);
  // Within 5 sigma of p = (0.5, 0.3, 0.2).
  const double p[3] = {0.5, 0.3, 0.2};
  for (int x = 0; x < 3; ++x) {
    EXPECT_NEAR(counts[x] / double(kN), p[x], 5 * std::sqrt(p[x] * (1 - p[x]) / kN)) << x;
  }
}

TEST(DraftLength, PredictedSpeedupFormula) {
  EXPECT_NEAR(predicted_speedup(0.8, 4, 0.0), (1 - std::pow(0.8, 5)) / 0.2, 1e-12);
  EXPECT_NEAR(predicted_speedup(1.0, 7, 0.0), 8.0, 1e-12);
  EXPECT_NEAR(predicted_speedup(0.6, 3, 0.1), (1 - std::pow(0.6, 4)) / (0.4 * 1.3), 1e-12);
}

TEST(DraftLength, ExploresThenMaximisesTokensPerSecond) {
  DraftLength len(1, 8);
  EXPECT_EQ(len.next(), 8);  // nothing measured yet
  len.observe(8, 8, 0.0, 1.0);
  EXPECT_EQ(len.next(), 1);  // one size timed: try the other end
  DraftLength fixed(4, 4);
  fixed.observe(4, 0, 0.4, 1.0);
  EXPECT_EQ(fixed.next(), 4);

  // Free draft, always accepted, verify cost independent of the batch: the longest draft.
  DraftLength good(1, 8);
  for (int i = 0; i < 50; ++i) good.observe(i % 2 ? 8 : 2, i % 2 ? 8 : 2, 0.0, 1.0);
  EXPECT_EQ(good.next(), 8);
  // Costly draft, always rejected: the shortest.
  DraftLength bad(2, 8);
  for (int i = 0; i < 50; ++i) bad.observe(i % 2 ? 4 : 2, 0, 0.1 * (i % 2 ? 4 : 2), 1.0);
  EXPECT_NEAR(bad.acceptance(), 0.0, 0.01);
  EXPECT_NEAR(bad.cost_ratio(), 0.1, 1e-9);
  EXPECT_EQ(bad.next(), 2);

  // a = 0.75, draft 0.05 s per token, verify 1 + 0.5 n seconds for n tokens: the rule fits the
  // line and picks the k of the largest (1 - a^(k+1)) / (1 - a) / (0.05 k + 1 + 0.5 (k + 1)).
  DraftLength mid(1, 8);
  for (int i = 0; i < 300; ++i) {
    const int32_t k = 2 + i % 5;  // 2..6
    const int32_t accepted = (i % 4 == 3) ? k : std::min(k - 1, 3);
    mid.observe(k, accepted, 0.05 * k, 1.0 + 0.5 * (k + 1));
  }
  EXPECT_NEAR(mid.verify_time(1), 1.5, 1e-6);
  EXPECT_NEAR(mid.verify_time(9), 5.5, 1e-6);
  const double a = mid.acceptance();
  int32_t best = 1;
  double best_rate = 0.0;
  for (int32_t k = 1; k <= 8; ++k) {
    const double rate = (1 - std::pow(a, k + 1)) / (1 - a) / (0.05 * k + 1.0 + 0.5 * (k + 1));
    if (rate > best_rate) best = k, best_rate = rate;
  }
  EXPECT_EQ(mid.next(), best);
  std::printf("[ info ] a = %.3f: k = %d\n", a, best);
}

}  // namespace
}  // namespace quanta
