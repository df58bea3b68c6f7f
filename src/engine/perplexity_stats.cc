// Per-position scores (double-precision log-softmax, KL, same top) and their accumulation
// with llama-perplexity's uncertainty formulas.
#include "engine/perplexity_stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace quanta::ppl {

LogSoftmax log_softmax(const float* logits, int32_t n_vocab) {
  QUANTA_ASSERT(n_vocab > 0);
  LogSoftmax r;
  float max = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > max) {
      max = logits[i];
      r.top = i;
    }
  }
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i]) - double(max));
  r.log_norm = double(max) + std::log(sum);
  return r;
}

PositionScore score_position(const float* logits, const float* base_logits, int32_t n_vocab,
                             int32_t target) {
  QUANTA_ASSERT(target >= 0 && target < n_vocab);
  PositionScore s;
  const LogSoftmax m = log_softmax(logits, n_vocab);
  s.nll = m.log_norm - double(logits[target]);
  if (base_logits == nullptr) return s;
  const LogSoftmax b = log_softmax(base_logits, n_vocab);
  s.nll_base = b.log_norm - double(base_logits[target]);
  double kl = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) {
    const double log_pb = double(base_logits[i]) - b.log_norm;
    const double log_pm = double(logits[i]) - m.log_norm;
    kl += std::exp(log_pb) * (log_pb - log_pm);
  }
  s.kl = kl;
  s.same_top = m.top == b.top;
  s.p_diff = std::exp(-s.nll) - std::exp(-s.nll_base);
  return s;
}

double percentile(const std::vector<double>& sorted, double fraction) {
  QUANTA_ASSERT(!sorted.empty());
  if (fraction <= 0.0) return sorted.front();
  if (fraction >= 1.0) return sorted.back();
  const double at = fraction * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(at);
  const double t = at - static_cast<double>(i);
  return (1.0 - t) * sorted[i] + t * sorted[std::min(i + 1, sorted.size() - 1)];
}

MeanUnc mean_and_uncertainty(double sum, double sum2, int64_t count) {
  MeanUnc r;
  if (count < 1) return r;
  r.mean = sum / count;
  const double var = sum2 / count - r.mean * r.mean;
  r.unc = var > 0.0 && count > 1 ? std::sqrt(var / (count - 1)) : 0.0;
  return r;
}

void ScoreAccumulator::add(const PositionScore& s) {
  ++count_;
  nll_ += s.nll;
  nll2_ += s.nll * s.nll;
  if (!has_base_) return;
  nll_base_ += s.nll_base;
  nll_base2_ += s.nll_base * s.nll_base;
  nll_nll_base_ += s.nll * s.nll_base;
  kl_ += s.kl;
  kl2_ += s.kl * s.kl;
  p_diff_ += s.p_diff;
  const double d2 = s.p_diff * s.p_diff;
  p_diff2_ += d2;
  p_diff4_ += d2 * d2;
  max_p_diff_ = std::max(max_p_diff_, std::fabs(s.p_diff));
  if (s.same_top) ++same_top_;
  kl_values_.push_back(s.kl);
}

double ScoreAccumulator::running_perplexity() const {
  return count_ > 0 ? std::exp(nll_ / count_) : 0.0;
}

namespace {

void fill_kl_percentiles(std::vector<double> kl, Summary& r) {
  std::sort(kl.begin(), kl.end());
  r.kl_max = kl.back();
  r.kl_p999 = percentile(kl, 0.999);
  r.kl_p99 = percentile(kl, 0.99);
  r.kl_p90 = percentile(kl, 0.90);
  r.kl_median = percentile(kl, 0.5);
  r.kl_p10 = percentile(kl, 0.10);
  r.kl_p5 = percentile(kl, 0.05);
  r.kl_p1 = percentile(kl, 0.01);
  r.kl_min = kl.front();
}

}  // namespace

Summary ScoreAccumulator::finish() const {
  Summary r;
  r.count = count_;
  if (count_ == 0) return r;
  const MeanUnc nll = mean_and_uncertainty(nll_, nll2_, count_);
  r.nll_mean = nll.mean;
  r.perplexity = std::exp(nll.mean);
  r.perplexity_unc = r.perplexity * nll.unc;
  if (!has_base_) return r;
  r.has_base = true;
  const MeanUnc base = mean_and_uncertainty(nll_base_, nll_base2_, count_);
  r.base_perplexity = std::exp(base.mean);
  r.base_perplexity_unc = r.base_perplexity * base.unc;
  const double n = static_cast<double>(count_);
  const double cov = count_ > 1 ? (nll_nll_base_ / n - nll.mean * base.mean) / (n - 1.0) : 0.0;
  r.ln_ratio = nll.mean - base.mean;
  r.ln_ratio_unc = std::sqrt(std::max(0.0, nll.unc * nll.unc + base.unc * base.unc - 2 * cov));
  r.ln_ppl_correlation = nll.unc > 0 && base.unc > 0 ? cov / (nll.unc * base.unc) : 1.0;
  const MeanUnc kl = mean_and_uncertainty(kl_, kl2_, count_);
  r.kl_mean = kl.mean;
  r.kl_unc = kl.unc;
  fill_kl_percentiles(kl_values_, r);
  r.same_top = static_cast<double>(same_top_) / n;
  r.same_top_unc = count_ > 1 ? std::sqrt(r.same_top * (1.0 - r.same_top) / (n - 1.0)) : 0.0;
  const MeanUnc mse = mean_and_uncertainty(p_diff2_, p_diff4_, count_);
  r.rms_p_diff = std::sqrt(mse.mean);
  r.rms_p_diff_unc = r.rms_p_diff > 0 ? 0.5 / r.rms_p_diff * mse.unc : 0.0;
  const MeanUnc dp = mean_and_uncertainty(p_diff_, p_diff2_, count_);
  r.mean_p_diff = dp.mean;
  r.mean_p_diff_unc = dp.unc;
  r.max_abs_p_diff = max_p_diff_;
  return r;
}

}  // namespace quanta::ppl
