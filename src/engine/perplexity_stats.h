// Scoring of one model's next-token logits (and optionally a base model's) the way
// llama-perplexity does: negative log-likelihood, KL(base || model), same top token and
// the change in the target's probability, log-softmax in double; and the accumulated
// figures with llama.cpp's uncertainty formulas and KL percentiles.
#pragma once

#include <cstdint>
#include <vector>

namespace quanta::ppl {

// The figures of one scored position.
struct PositionScore {
  double nll = 0.0;       // -log p_model(target)
  double nll_base = 0.0;  // -log p_base(target) (with a base)
  double kl = 0.0;        // sum_i p_base_i (log p_base_i - log p_model_i) (with a base)
  double p_diff = 0.0;    // p_model(target) - p_base(target) (with a base)
  bool same_top = false;  // both argmaxes equal (with a base)
};

// log p_i = logits[i] - log_norm; top = the first index of the largest logit.
struct LogSoftmax {
  double log_norm = 0.0;  // max + log(sum_i exp(logits[i] - max)), in double
  int32_t top = 0;
};
LogSoftmax log_softmax(const float* logits, int32_t n_vocab);

// Scores one position against `target`; base_logits may be null (perplexity only).
PositionScore score_position(const float* logits, const float* base_logits, int32_t n_vocab,
                             int32_t target);

// The value at `fraction` of sorted `values` with linear interpolation between neighbours at
// fraction * (n - 1) (llama.cpp's percentile); values must be sorted and non-empty.
double percentile(const std::vector<double>& sorted, double fraction);

// Mean and its standard error: sqrt((mean(x^2) - mean(x)^2) / (count - 1)) (0 for count <= 1
// or a non-positive variance), llama.cpp's formula.
struct MeanUnc {
  double mean = 0.0;
  double unc = 0.0;
};
MeanUnc mean_and_uncertainty(double sum, double sum2, int64_t count);

// Everything the perplexity command reports.
struct Summary {
  int64_t count = 0;            // scored positions
  double nll_mean = 0.0;        // mean negative log-likelihood (nats)
  double perplexity = 0.0;      // exp(nll_mean)
  double perplexity_unc = 0.0;  // perplexity * standard error of nll_mean
  bool has_base = false;
  double base_perplexity = 0.0, base_perplexity_unc = 0.0;
  double ln_ratio = 0.0, ln_ratio_unc = 0.0;  // mean ln(PPL(model) / PPL(base))
  double ln_ppl_correlation = 0.0;            // Cor(ln PPL(model), ln PPL(base))
  double kl_mean = 0.0, kl_unc = 0.0;
  double kl_max = 0.0, kl_p999 = 0.0, kl_p99 = 0.0, kl_p90 = 0.0, kl_median = 0.0;
  double kl_p10 = 0.0, kl_p5 = 0.0, kl_p1 = 0.0, kl_min = 0.0;
  double same_top = 0.0, same_top_unc = 0.0;      // fractions (0..1)
  double rms_p_diff = 0.0, rms_p_diff_unc = 0.0;  // RMS of p_model - p_base (0..1)
  double mean_p_diff = 0.0, mean_p_diff_unc = 0.0;
  double max_abs_p_diff = 0.0;
};

// Adds position scores in order and produces the Summary.
class ScoreAccumulator {
 public:
  explicit ScoreAccumulator(bool has_base) : has_base_(has_base) {}
  void add(const PositionScore& s);
  int64_t count() const { return count_; }
  double running_perplexity() const;
  Summary finish() const;

 private:
  bool has_base_;
  int64_t count_ = 0;
  double nll_ = 0.0, nll2_ = 0.0;
  double nll_base_ = 0.0, nll_base2_ = 0.0, nll_nll_base_ = 0.0;
  double kl_ = 0.0, kl2_ = 0.0;
  double p_diff_ = 0.0, p_diff2_ = 0.0, p_diff4_ = 0.0, max_p_diff_ = 0.0;
  int64_t same_top_ = 0;
  std::vector<double> kl_values_;
};

}  // namespace quanta::ppl
