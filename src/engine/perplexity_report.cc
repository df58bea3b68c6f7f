// Text and JSON reports of a perplexity run (figures named as llama-perplexity prints them).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/perplexity.h"

namespace quanta::ppl {
namespace {

std::string format(const char* fmt, double a, double b = 0.0) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), fmt, a, b);
  return buf;
}

}  // namespace

std::string perplexity_json(const PerplexityResult& r) {
  const Summary& s = r.summary;
  nlohmann::ordered_json j;
  j["perplexity"] = s.perplexity;
  j["perplexity_uncertainty"] = s.perplexity_unc;
  j["tokens_scored"] = s.count;
  j["n_ctx"] = r.n_ctx;
  j["n_chunks"] = r.n_chunks;
  j["n_tokens"] = r.n_tokens;
  j["seconds"] = r.seconds;
  if (s.has_base) {
    j["base_perplexity"] = s.base_perplexity;
    j["ln_ppl_ratio"] = s.ln_ratio;
    j["ln_ppl_ratio_uncertainty"] = s.ln_ratio_unc;
    j["kl_mean"] = s.kl_mean;
    j["kl_uncertainty"] = s.kl_unc;
    j["kl_median"] = s.kl_median;
    j["kl_p99"] = s.kl_p99;
    j["kl_p999"] = s.kl_p999;
    j["kl_max"] = s.kl_max;
    j["same_top"] = s.same_top;
    j["same_top_uncertainty"] = s.same_top_unc;
    j["rms_p_diff"] = s.rms_p_diff;
  }
  return j.dump();
}

std::string perplexity_report(const PerplexityResult& r) {
  const Summary& s = r.summary;
  std::string out;
  out += format("chunks: %.0f of %.0f tokens each", r.n_chunks, r.n_ctx);
  out += format(", tokens scored: %.0f, time: %.2f s\n", static_cast<double>(s.count), r.seconds);
  out += format("Final estimate: PPL = %.4f +/- %.5f\n", s.perplexity, s.perplexity_unc);
  if (!s.has_base) return out;
  out += "\n====== Perplexity statistics ======\n";
  out +=
      format("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s.perplexity, s.perplexity_unc);
  out += format("Mean PPL(base)                : %10.6f ± %10.6f\n", s.base_perplexity,
                s.base_perplexity_unc);
  out += format("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * s.ln_ppl_correlation);
  out += format("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s.ln_ratio, s.ln_ratio_unc);
  out += "\n====== KL divergence statistics ======\n";
  out += format("Mean    KLD: %10.6f ± %10.6f\n", s.kl_mean, s.kl_unc);
  out += format("Maximum KLD: %10.6f\n", s.kl_max);
  out += format("99.9%%   KLD: %10.6f\n", s.kl_p999);
  out += format("99.0%%   KLD: %10.6f\n", s.kl_p99);
  out += format("90.0%%   KLD: %10.6f\n", s.kl_p90);
  out += format("Median  KLD: %10.6f\n", s.kl_median);
  out += format("10.0%%   KLD: %10.6f\n", s.kl_p10);
  out += format(" 5.0%%   KLD: %10.6f\n", s.kl_p5);
  out += format(" 1.0%%   KLD: %10.6f\n", s.kl_p1);
  out += format("Minimum KLD: %10.6f\n", s.kl_min);
  out += "\n====== Token probability statistics ======\n";
  out += format("Mean    Δp: %6.3f ± %5.3f %%\n", 100.0 * s.mean_p_diff, 100.0 * s.mean_p_diff_unc);
  out += format("Maximum |Δp|: %6.3f%%\n", 100.0 * s.max_abs_p_diff);
  out += format("RMS Δp    : %6.3f ± %5.3f %%\n", 100.0 * s.rms_p_diff, 100.0 * s.rms_p_diff_unc);
  out += format("Same top p: %6.3f ± %5.3f %%\n", 100.0 * s.same_top, 100.0 * s.same_top_unc);
  return out;
}

}  // namespace quanta::ppl
