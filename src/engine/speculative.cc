// SpeculativeGenerator: draft, verify in one batch, roll back, adapt the draft length.
#include "engine/speculative.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/system.h"

namespace quanta {
namespace {

// Length of the common prefix of a and b, at most limit.
int32_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int32_t limit) {
  int32_t n = 0;
  while (n < limit && n < static_cast<int32_t>(a.size()) && n < static_cast<int32_t>(b.size()) &&
         a[n] == b[n]) {
    ++n;
  }
  return n;
}

}  // namespace

double predicted_speedup(double a, int32_t k, double c) {
  const double tokens = a >= 1.0 ? k + 1.0 : (1.0 - std::pow(a, k + 1)) / (1.0 - a);
  return tokens / (k * c + 1.0);
}

DraftLength::DraftLength(int32_t min, int32_t max) : min_(min), max_(max) {
  QUANTA_ASSERT(1 <= min && min <= max);
}

double DraftLength::verify_time(int32_t n) const {
  if (w_ <= 0.0) return 0.0;
  const double mn = sn_ / w_, mt = st_ / w_;
  const double var = snn_ / w_ - mn * mn;
  const double slope = var > 1e-9 ? std::max(0.0, (snt_ / w_ - mn * mt) / var) : 0.0;
  return std::max(mt + slope * (n - mn), 1e-12);
}

double DraftLength::cost_ratio() const {
  if (w_ <= 0.0 || drafted_ <= 0.0) return 0.0;
  return (draft_s_ / drafted_) / verify_time(1);
}

int32_t DraftLength::next() const {
  if (first_size_ < 0) return max_;
  if (!two_sizes_) return first_size_ == max_ ? min_ : max_;
  const double a = std::min(acceptance(), 1.0);
  const double t_draft = drafted_ > 0.0 ? draft_s_ / drafted_ : 0.0;
  int32_t best = min_;
  double best_rate = 0.0;
  for (int32_t k = min_; k <= max_; ++k) {
    const double tokens = a >= 1.0 ? k + 1.0 : (1.0 - std::pow(a, k + 1)) / (1.0 - a);
    const double rate = tokens / (k * t_draft + verify_time(k + 1));
    if (rate >= best_rate * (1.0 - 1e-9)) best = k, best_rate = std::max(rate, best_rate);
  }
  return best;
}

void DraftLength::observe(int32_t drafted, int32_t accepted, double draft_s, double verify_s) {
  constexpr double kDecay = 0.9;
  const int32_t tested = accepted + (accepted < drafted ? 1 : 0);
  accepted_ = kDecay * accepted_ + accepted;
  tested_ = kDecay * tested_ + tested;
  if (drafted > 0) {
    draft_s_ = kDecay * draft_s_ + draft_s;
    drafted_ = kDecay * drafted_ + drafted;
  }
  const double n = drafted + 1;
  w_ = kDecay * w_ + 1.0;
  sn_ = kDecay * sn_ + n;
  snn_ = kDecay * snn_ + n * n;
  st_ = kDecay * st_ + verify_s;
  snt_ = kDecay * snt_ + n * verify_s;
  if (first_size_ < 0) first_size_ = drafted;
  if (drafted != first_size_) two_sizes_ = true;
}

SpeculativeGenerator::SpeculativeGenerator(models::Context& target, Drafter& drafter,
                                           const SpecOptions& options)
    : gen_(target),
      drafter_(drafter),
      options_(options),
      draft_(target.n_vocab(), std::max(options.draft_max, 1)),
      verifier_(target.n_vocab()),
      length_(std::clamp(options.draft_min, 1, std::max(options.draft_max, 1)),
              std::max(options.draft_max, 1)) {
  if (options.draft_max < 1) fail("--draft-max must be >= 1 (got %d)", options.draft_max);
  if (options.draft_min < 1 || options.draft_min > options.draft_max) {
    fail("--draft-min must be in [1, --draft-max %d] (got %d)", options.draft_max,
         options.draft_min);
  }
  const models::ContextOptions& o = target.options();
  if (o.n_batch < options.draft_max + 1 || o.n_outputs < options.draft_max + 1) {
    fail(
        "speculative decoding with --draft-max %d needs a target context with n_batch and "
        "n_outputs >= %d (have %d and %d)",
        options.draft_max, options.draft_max + 1, o.n_batch, o.n_outputs);
  }
  history_.reserve(target.n_ctx() + 1);
  batch_.reserve(options.draft_max + 1);
  out_.reserve(options.draft_max + 1);
}

int32_t SpeculativeGenerator::round(Sampler& sampler, int32_t k, SpecStats& stats) {
  const double t0 = now_seconds();
  if (k > 0) {
    drafter_.propose(history_, k, draft_);
  } else {
    draft_.clear();
  }
  const double t1 = now_seconds();
  const int32_t n_draft = draft_.size();
  batch_.assign(1, history_.back());
  batch_.insert(batch_.end(), draft_.tokens.begin(), draft_.tokens.end());
  const int32_t base = gen_.n_past();
  const float* logits = gen_.prefill(batch_.data(), n_draft + 1, /*all_logits=*/true);
  out_.clear();
  const int32_t accepted = verifier_.verify(sampler, logits, draft_, out_);
  gen_.truncate(base + 1 + accepted);  // drop the K/V rows of rejected draft tokens
  const double t2 = now_seconds();
  length_.observe(n_draft, accepted, t1 - t0, t2 - t1);
  ++stats.n_passes;
  stats.n_drafted += n_draft;
  stats.n_accepted += accepted;
  stats.n_tested += accepted + (accepted < n_draft ? 1 : 0);
  stats.draft_seconds += t1 - t0;
  stats.verify_seconds += t2 - t1;
  return accepted;
}

SpecStats SpeculativeGenerator::generate(const std::vector<int32_t>& prompt, int32_t n_predict,
                                         Sampler& sampler,
                                         const std::function<bool(int32_t)>& on_token,
                                         const std::function<bool(int32_t)>& is_eog) {
  if (prompt.empty()) fail("generate: empty prompt");
  SpecStats stats;
  stats.n_prompt = static_cast<int32_t>(prompt.size());
  for (int32_t t : prompt) sampler.accept(t);
  const double t0 = now_seconds();
  // The KV cache holds every token but the last, which starts the first verification batch.
  // Rows of the previous sequence that match the prompt are kept (repeated prompts, or a
  // continued conversation, skip their prefill).
  const int32_t keep = common_prefix(history_, prompt, std::min(gen_.n_past(), stats.n_prompt - 1));
  gen_.truncate(keep);
  history_.assign(prompt.begin(), prompt.end());
  drafter_.commit(history_);
  if (keep < stats.n_prompt - 1) gen_.prefill(prompt.data() + keep, stats.n_prompt - 1 - keep);
  stats.prompt_seconds = now_seconds() - t0;
  const int32_t n_ctx = gen_.context().n_ctx();
  double t_first = 0.0;
  bool done = n_predict <= 0;
  while (!done && static_cast<int32_t>(history_.size()) <= n_ctx) {
    const int32_t n_hist = static_cast<int32_t>(history_.size());
    const int32_t k = std::min({length_.next(), n_predict - stats.n_generated - 1, n_ctx - n_hist});
    round(sampler, std::max(k, 0), stats);
    for (int32_t token : out_) {
      if (stats.n_generated == 0 && t_first == 0.0) {
        t_first = now_seconds();
        stats.ttft_seconds = t_first - t0;
      }
      if (is_eog && is_eog(token)) {
        stats.stopped_at_eog = true;
        done = true;
        break;
      }
      history_.push_back(token);
      ++stats.n_generated;
      if (!on_token(token) || stats.n_generated == n_predict) {
        done = true;
        break;
      }
    }
    drafter_.commit(history_);
  }
  if (stats.n_generated > 0) stats.decode_seconds = now_seconds() - t_first;
  return stats;
}

}  // namespace quanta
