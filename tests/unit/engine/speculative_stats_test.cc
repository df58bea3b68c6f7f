// Speculative sampling is lossless: over many seeded runs on stories260K (temperature 1, every
// filter off), the first sampled token and the first token pair follow the target's exact
// distribution (chi-square, alpha = 1e-4 each, fixed seeds, so the outcome is deterministic),
// for a mismatched draft model and for n-gram lookup; the rate at which the first draft token
// is accepted matches the predicted sum_x min(p(x), q(x)); and the same chi-square test does
// reject the draft's own distribution (the test has power).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "engine/ngram.h"
#include "engine/speculative.h"
#include "speculative_test_util.h"

namespace quanta {
namespace {

using spec_test::encode;
using spec_test::load_shared;
using spec_test::plain_sampling;
using spec_test::spec_options;
using spec_test::target_model;

// Upper 1e-4 quantile of the standard normal, and of chi-square with df degrees of freedom by
// the Wilson-Hilferty approximation (relative error < 1% for df >= 3).
constexpr double kZ = 3.7190;
double chi2_critical(int df) {
  const double h = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - h + kZ * std::sqrt(h), 3.0);
}

// Pearson's statistic of `counts` (keyed by outcome) against probabilities `probs` over n
// samples: outcomes with expected count >= 5 are bins of their own, all others one pooled bin
// (merged into the smallest bin when its expectation is below 5). Returns {statistic, df}.
std::pair<double, int> chi_square(const std::map<int64_t, int>& counts,
                                  const std::map<int64_t, double>& probs, int n) {
  std::vector<std::pair<double, double>> bins;  // {expected, observed}
  double pooled_e = 0.0, pooled_o = n;
  for (const auto& [key, p] : probs) {
    if (n * p < 5.0) continue;
    const auto it = counts.find(key);
    const double o = it == counts.end() ? 0.0 : it->second;
    bins.emplace_back(n * p, o);
    pooled_o -= o;
  }
  pooled_e = n;
  for (const auto& b : bins) pooled_e -= b.first;
  if (pooled_e >= 5.0) {
    bins.emplace_back(pooled_e, pooled_o);
  } else {
    auto smallest = std::min_element(bins.begin(), bins.end());
    smallest->first += pooled_e, smallest->second += pooled_o;
  }
  double stat = 0.0;
  for (const auto& [e, o] : bins) stat += (o - e) * (o - e) / e;
  return {stat, static_cast<int>(bins.size()) - 1};
}

// softmax(logits) in double.
std::vector<double> softmax(const float* logits, int32_t n) {
  std::vector<double> p(logits, logits + n);
  const double mx = *std::max_element(p.begin(), p.end());
  double sum = 0.0;
  for (double& x : p) sum += (x = std::exp(x - mx));
  for (double& x : p) x /= sum;
  return p;
}

// Exact target probabilities of the first token, and of (x1, x2) pairs for every x1 with an
// expected count >= 5 in n samples (pairs key x1 * n_vocab + x2).
struct Exact {
  std::map<int64_t, double> first, pairs;
};

Exact exact_distribution(models::Context& ctx, const std::vector<int32_t>& prompt, int n) {
  const int32_t nv = ctx.n_vocab();
  Generator gen(ctx);
  Exact ex;
  const std::vector<double> p1 = softmax(gen.prefill(prompt.data(), prompt.size()), nv);
  for (int32_t x = 0; x < nv; ++x) ex.first[x] = p1[x];
  double covered = 0.0;
  for (int32_t x = 0; x < nv; ++x) {
    if (n * p1[x] < 5.0) continue;
    gen.truncate(static_cast<int32_t>(prompt.size()));
    const std::vector<double> p2 = softmax(gen.decode(x), nv);
    for (int32_t y = 0; y < nv; ++y) ex.pairs[int64_t(x) * nv + y] = p1[x] * p2[y];
    covered += p1[x];
  }
  // x1 outside the set above: one key (-1) of their own, so probabilities still sum to 1.
  ex.pairs[-1] = 1.0 - covered;
  return ex;
}

struct Samples {
  std::map<int64_t, int> first, pairs;
  int n = 0, first_accepted = 0;
};

// n seeded runs of k-token speculation generating k + 1 tokens each.
Samples run_trials(models::Context& target, Drafter& drafter, int32_t k,
                   const std::vector<int32_t>& prompt, int n, const Exact& ex) {
  SpecOptions so;
  so.draft_min = so.draft_max = k;
  SpeculativeGenerator gen(target, drafter, so);
  const int32_t nv = target.n_vocab();
  Samples s;
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    Sampler sampler(nv, plain_sampling(1000003ull * (i + 1)));
    out.clear();
    const SpecStats st =
        gen.generate(prompt, k + 1, sampler, [&](int32_t t) { return out.push_back(t), true; });
    EXPECT_EQ(out.size(), static_cast<size_t>(k + 1));
    ++s.first[out[0]];
    const int64_t pair = int64_t(out[0]) * nv + out[1];
    ++s.pairs[ex.pairs.count(pair) ? pair : -1];
    if (k == 1) s.first_accepted += st.n_accepted;  // k = 1: the second round drafts nothing
  }
  s.n = n;
  return s;
}

void expect_fits(const std::map<int64_t, int>& counts, const std::map<int64_t, double>& probs,
                 int n, const char* what) {
  const auto [stat, df] = chi_square(counts, probs, n);
  std::printf("[ info ] %s: chi2 %.1f, df %d, critical %.1f (alpha 1e-4)\n", what, stat, df,
              chi2_critical(df));
  EXPECT_GE(df, 3) << what;
  EXPECT_LT(stat, chi2_critical(df)) << what;
}

// 300 runs under AddressSanitizer: the test stays valid at any size, only its power drops (the
// control below still fails q by a wide margin).
constexpr int kRuns = spec_test::kSanitized ? 300 : 4000;
const char* const kPrompt = "Once upon a time, there was a little girl named Lily. She";

TEST(SpeculativeSampling, DraftModelOutputFollowsTheTarget) {
  const std::vector<int32_t> prompt = encode(kPrompt);
  models::Context target(target_model(), spec_options());
  models::Context draft(load_shared("stories260K-Q5_0mix.gguf"), spec_options());
  const Exact ex = exact_distribution(target, prompt, kRuns);
  // A hotter draft (temperature 1.6) makes rejections, and so the residual path, common.
  SamplingParams dp = plain_sampling(7);
  dp.temperature = 1.6f;
  ModelDrafter drafter(draft, target.n_vocab(), dp);

  const Samples k3 = run_trials(target, drafter, 3, prompt, kRuns, ex);
  expect_fits(k3.first, ex.first, k3.n, "draft model, K 3, first token");
  expect_fits(k3.pairs, ex.pairs, k3.n, "draft model, K 3, token pairs");

  const Samples k1 = run_trials(target, drafter, 1, prompt, kRuns, ex);
  expect_fits(k1.first, ex.first, k1.n, "draft model, K 1, first token");
  // Acceptance of the first draft token vs sum_x min(p(x), q(x)), within 4.5 sigma.
  Generator tg(target), dg(draft);
  Sampler ps(target.n_vocab(), plain_sampling(1)), qs(target.n_vocab(), dp);
  Candidates p(target.n_vocab()), q(target.n_vocab());
  ps.apply(tg.prefill(prompt.data(), prompt.size()), p);
  qs.apply(dg.prefill(prompt.data(), prompt.size()), q);
  std::vector<double> dense(target.n_vocab(), 0.0);
  const double alpha = acceptance_probability(p, q, dense);
  const double rate = double(k1.first_accepted) / k1.n;
  const double sigma = std::sqrt(alpha * (1 - alpha) / k1.n);
  std::printf("[ info ] first-token acceptance %.4f, predicted %.4f (sigma %.4f)\n", rate, alpha,
              sigma);
  EXPECT_GT(alpha, 0.3);
  EXPECT_LT(alpha, 0.95);
  EXPECT_LT(std::abs(rate - alpha), 4.5 * sigma);

  // Power: the draft's own first token (drawn from q) fails the same test against p.
  std::map<int64_t, int> from_q;
  for (int i = 0; i < kRuns; ++i) ++from_q[qs.draw(q)];
  const auto [stat, df] = chi_square(from_q, ex.first, kRuns);
  std::printf("[ info ] control, samples of q: chi2 %.1f, df %d, critical %.1f\n", stat, df,
              chi2_critical(df));
  EXPECT_GT(stat, chi2_critical(df)) << "the chi-square test cannot tell q from p";
}

TEST(SpeculativeSampling, NgramLookupOutputFollowsTheTarget) {
  // The prompt ends inside a phrase it already contains, so lookup proposes its continuation.
  const std::vector<int32_t> prompt =
      encode("Lily saw a big red ball. She was happy. Lily saw a big");
  models::Context target(target_model(), spec_options());
  const Exact ex = exact_distribution(target, prompt, kRuns);
  NgramDrafter drafter(2);
  const Samples s = run_trials(target, drafter, 3, prompt, kRuns, ex);
  expect_fits(s.first, ex.first, s.n, "n-gram lookup, K 3, first token");
  expect_fits(s.pairs, ex.pairs, s.n, "n-gram lookup, K 3, token pairs");
}

}  // namespace
}  // namespace quanta
