// Perplexity and KL: the scoring math on hand-computed cases (log-softmax in double, KL,
// percentiles, llama.cpp's uncertainty), llama-perplexity's reference figures for
// stories260K (PPL 6.1780 at context 128; KL of the Q8_0 mix 0.000966, same top 98.11%),
// quantized-KV top-token agreement against F32 KV, batching invariance and input errors.
#include "engine/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "testlib/shared_data.h"

namespace quanta::ppl {
namespace {

TEST(PerplexityStats, LogSoftmaxAndNllInDouble) {
  const float logits[4] = {1.0f, 3.0f, -2.0f, 3.0f};
  const LogSoftmax ls = log_softmax(logits, 4);
  const double z = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(-2.0);
  EXPECT_NEAR(ls.log_norm, std::log(z), 1e-12);
  EXPECT_EQ(ls.top, 1);  // the first of the tied maxima
  const PositionScore s = score_position(logits, nullptr, 4, 2);
  EXPECT_NEAR(s.nll, std::log(z) + 2.0, 1e-12);
  // Huge logits: the max is subtracted, nothing overflows.
  const float big[2] = {1000.0f, 999.0f};
  EXPECT_NEAR(score_position(big, nullptr, 2, 1).nll, std::log1p(std::exp(1.0)), 1e-12);
}

TEST(PerplexityStats, KlSameTopAndProbabilityChange) {
  const float base[3] = {0.0f, std::log(2.0f), std::log(5.0f)};  // p = 1/8, 2/8, 5/8
  const float model[3] = {0.0f, 0.0f, 0.0f};                     // q = 1/3 each
  const PositionScore same = score_position(base, base, 3, 1);
  EXPECT_NEAR(same.kl, 0.0, 1e-12);
  EXPECT_TRUE(same.same_top);
  const PositionScore s = score_position(model, base, 3, 2);
  const double p[3] = {1.0 / 8, 2.0 / 8, 5.0 / 8};
  double kl = 0.0;
  for (double pi : p) kl += pi * std::log(pi * 3.0);
  EXPECT_NEAR(s.kl, kl, 1e-7);  // float logits: log(2), log(5) rounded
  EXPECT_FALSE(s.same_top);     // model's top is token 0 (first of equals), base's token 2
  EXPECT_NEAR(s.nll_base, -std::log(5.0 / 8), 1e-7);
  EXPECT_NEAR(s.p_diff, 1.0 / 3 - 5.0 / 8, 1e-7);
}

TEST(PerplexityStats, PercentileInterpolatesAndUncertaintyFollowsLlamaCpp) {
  const std::vector<double> v = {1.0, 2.0, 4.0, 8.0, 16.0};
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 0.5), 4.0);
  EXPECT_DOUBLE_EQ(percentile(v, 0.99), 8.0 + 0.96 * 8.0);  // at 3.96
  EXPECT_DOUBLE_EQ(percentile(v, 1.0), 16.0);
  const MeanUnc m = mean_and_uncertainty(1 + 2 + 3 + 4, 1 + 4 + 9 + 16, 4);
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.unc, std::sqrt((7.5 - 6.25) / 3), 1e-15);
  ScoreAccumulator acc(false);
  for (double nll : {1.0, 2.0, 3.0}) acc.add(PositionScore{nll});
  const Summary s = acc.finish();
  EXPECT_EQ(s.count, 3);
  EXPECT_NEAR(s.perplexity, std::exp(2.0), 1e-12);
  EXPECT_NEAR(s.perplexity_unc, std::exp(2.0) * std::sqrt((14.0 / 3 - 4) / 2), 1e-12);
}

struct Loaded {
  std::unique_ptr<models::Model> model;
  std::vector<int32_t> tokens;
  int32_t bos = -1;
};

Loaded load(const std::string& model_name,
            const std::string& text = "tinystories_validation_100.txt") {
  Loaded l;
  l.model = models::Model::load(testlib::shared_path("models/" + model_name));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(l.model->file());
  l.tokens = tokenize_for_perplexity(tok, testlib::read_file(testlib::shared_path("text/" + text)));
  if (tok.add_bos()) l.bos = tok.bos();
  return l;
}

PerplexityOptions options(int32_t n_ctx, int32_t bos, int32_t max_chunks = 0) {
  PerplexityOptions o;
  o.n_ctx = n_ctx;
  o.bos = bos;
  o.max_chunks = max_chunks;
  o.n_threads = 2;
  return o;
}

// The reference figures in ../shared/text/README.md (llama.cpp c392e509 llama-perplexity).
// NOTE: llama-perplexity's KV cache is F16 by default; with F32 KV the figure is 6.17808.
TEST(Perplexity, Stories260KMatchesLlamaPerplexityAtContext128) {
  const Loaded l = load("stories260K.gguf");
  EXPECT_EQ(l.tokens.size(), 40710u);
  PerplexityOptions o = options(128, l.bos);
  o.kv_type = GgmlType::F16;
  const PerplexityResult r = evaluate_perplexity(*l.model, l.tokens, o);
  EXPECT_EQ(r.n_chunks, 318);
  EXPECT_EQ(r.summary.count, 318 * 63);
  EXPECT_NEAR(r.summary.perplexity, 6.1780, 0.0005);
  EXPECT_NEAR(r.summary.perplexity_unc, 0.1303, 0.0005);
  std::printf("[ stories260K, F16 KV, ctx 128 ] PPL %.4f +/- %.4f over %lld tokens in %.2f s\n",
              r.summary.perplexity, r.summary.perplexity_unc,
              static_cast<long long>(r.summary.count), r.seconds);
}

TEST(Perplexity, Stories260KQ8MixKlMatchesLlamaCpp) {
  const Loaded base = load("stories260K.gguf");
  const auto q8 = models::Model::load(testlib::shared_path("models/stories260K-Q8_0mix.gguf"));
  PerplexityOptions o = options(128, base.bos);
  o.kv_type = o.base_kv_type = GgmlType::F16;  // llama-perplexity's default
  const PerplexityResult r = evaluate_perplexity(*q8, base.tokens, o, base.model.get());
  const Summary& s = r.summary;
  EXPECT_NEAR(s.base_perplexity, 6.1780, 0.0005);
  // Measured 0.000949: llama.cpp stores the base log-probabilities as 16-bit codes and skips
  // those below e^-16, and its Q8_0-mix logits differ from quanta's by up to ~0.4.
  EXPECT_NEAR(s.kl_mean, 0.000966, 0.00005);
  EXPECT_NEAR(s.kl_p99, 0.0073, 0.0005);
  EXPECT_NEAR(s.same_top, 0.9811, 0.002);
  std::printf(
      "[ stories260K-Q8_0mix vs F32, ctx 128 ] PPL %.4f, KL mean %.6f +/- %.6f, "
      "p99 %.5f, same top %.2f%% in %.2f s\n",
      s.perplexity, s.kl_mean, s.kl_unc, s.kl_p99, 100 * s.same_top, r.seconds);
}

// Quantized KV against F32 KV: the same model as its own base. The synthetic GQA model (head
// size 32, random weights) reads the TinyStories text (same vocabulary), 24 windows of 128.
// Its logits are ill-conditioned: llama.cpp's own Q8_0 weights (syn-llama-gqa-q8_0) agree on
// the top token only 94.5% of the time (KL 0.0054). Measured (default key transform): Q8_0
// KV 98.7% (KL 0.00045), Q4_0 KV 79.6% (KL 0.086). stories260K (trained) is the next test.
TEST(Perplexity, QuantizedKvKeepsTopTokenAgreement) {
  const Loaded l = load("syn-llama-gqa-f32.gguf");
  double last_kl = 0.0;
  for (const auto& [type, min_same_top] :
       {std::pair{GgmlType::Q8_0, 0.975}, std::pair{GgmlType::Q4_0, 0.75}}) {
    PerplexityOptions o = options(128, l.bos, 24);
    o.kv_type = type;
    o.base_kv_type = GgmlType::F32;
    const PerplexityResult r = evaluate_perplexity(*l.model, l.tokens, o, l.model.get());
    const Summary& s = r.summary;
    EXPECT_GE(s.same_top, min_same_top) << type_name(type);
    EXPECT_GT(s.kl_mean, last_kl) << type_name(type);  // Q4_0 disturbs more than Q8_0
    EXPECT_LT(s.kl_mean, type == GgmlType::Q8_0 ? 0.001 : 0.15) << type_name(type);
    last_kl = s.kl_mean;
    std::printf(
        "[ syn-llama-gqa-f32, %s KV vs F32 KV ] PPL %.1f vs %.1f, KL mean %.6f, p99 "
        "%.5f, same top %.2f%% (%lld tokens, %.2f s)\n",
        type_name(type), s.perplexity, s.base_perplexity, s.kl_mean, s.kl_p99, 100 * s.same_top,
        static_cast<long long>(s.count), r.seconds);
  }
}

// stories260K (head size 8, packed quantized KV rows: a token's 4 KV heads share each
// 32-value block) against itself with F32 KV, on the first 32 windows of 128 (2,016 scored
// tokens), with the default transforms (kv::KeyTransform rotate: key offset, per-head matrix,
// Walsh-Hadamard; for Q4_0 the 4 heads of a block transformed jointly as one 32-wide head and
// keys and values rounded under the calibrated metrics by a beam search; value transform;
// docs/QUANTIZATION.md) and without them. Whole file (318 windows), same top / KL: Q8_0
// 99.45% / 0.00017 (none: 96.71% / 0.0046), Q4_0 95.01% / 0.0099 (none: 45.42% / 1.26); this
// slice: Q8_0 99.60% / 0.00016, Q4_0 94.94% / 0.0088. The targets (Q8_0 >= 99%,
// Q4_0 >= 95%) are met on the whole file; the whole file takes ~40 s, so this slice guards
// them with floors just under its own figures.
TEST(Perplexity, Stories260KQuantizedKvAgainstF32Kv) {
  const Loaded l = load("stories260K.gguf");
  double last_kl = 0.0;
  for (const auto& [type, min_same_top, max_kl] :
       {std::tuple{GgmlType::Q8_0, 0.99, 0.00025}, std::tuple{GgmlType::Q4_0, 0.945, 0.0105}}) {
    PerplexityOptions o = options(128, l.bos, 32);
    o.kv_type = type;
    o.base_kv_type = GgmlType::F32;
    const PerplexityResult r = evaluate_perplexity(*l.model, l.tokens, o, l.model.get());
    const Summary& s = r.summary;
    EXPECT_EQ(s.count, 32 * 63);
    EXPECT_GE(s.same_top, min_same_top) << type_name(type);
    EXPECT_LT(s.kl_mean, max_kl) << type_name(type);
    EXPECT_GT(s.kl_mean, last_kl) << type_name(type);  // Q4_0 disturbs more than Q8_0
    last_kl = s.kl_mean;
    std::printf(
        "[ stories260K, %s KV vs F32 KV ] PPL %.4f vs %.4f, KL mean %.6f, p99 %.5f, same top "
        "%.2f%% (%lld tokens, %.2f s)\n",
        type_name(type), s.perplexity, s.base_perplexity, s.kl_mean, s.kl_p99, 100 * s.same_top,
        static_cast<long long>(s.count), r.seconds);
  }
  // Without the transform (--kv-transform none), Q8_0 loses what the transform wins.
  PerplexityOptions o = options(128, l.bos, 32);
  o.kv_type = GgmlType::Q8_0;
  o.kv_transform = kv::KeyTransformMode::kNone;
  const Summary none = evaluate_perplexity(*l.model, l.tokens, o, l.model.get()).summary;
  EXPECT_LT(none.same_top, 0.98);
  EXPECT_GT(none.kl_mean, 0.003);
}

// Windows per forward pass change nothing: 1 window per pass and 4 per pass agree.
TEST(Perplexity, WindowsPerPassDoNotChangeTheResult) {
  const Loaded l = load("stories260K.gguf");
  PerplexityOptions one = options(64, l.bos, 12);
  one.batch_tokens = 64;
  PerplexityOptions four = one;
  four.batch_tokens = 256;
  const Summary a = evaluate_perplexity(*l.model, l.tokens, one).summary;
  const Summary b = evaluate_perplexity(*l.model, l.tokens, four).summary;
  EXPECT_EQ(a.count, 12 * 31);
  EXPECT_NEAR(a.perplexity, b.perplexity, 1e-9 * a.perplexity);
}

TEST(Perplexity, RejectsShortTextsTinyWindowsAndForeignTokens) {
  const Loaded l = load("stories260K.gguf");
  const std::vector<int32_t> short_text(l.tokens.begin(), l.tokens.begin() + 255);
  EXPECT_THROW(evaluate_perplexity(*l.model, short_text, options(128, l.bos)), Error);
  EXPECT_THROW(evaluate_perplexity(*l.model, l.tokens, options(3, l.bos)), Error);
  std::vector<int32_t> bad = short_text;
  bad[10] = 512;  // the vocabulary has 512 tokens
  EXPECT_THROW(evaluate_perplexity(*l.model, bad, options(64, l.bos)), Error);
  const auto other = models::Model::load(testlib::shared_path("models/syn-qwen2-f32.gguf"));
  EXPECT_THROW(evaluate_perplexity(*l.model, short_text, options(64, l.bos), other.get()), Error);
}

}  // namespace
}  // namespace quanta::ppl
