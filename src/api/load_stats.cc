// Reduction of load-test samples to the benchmark_serving metrics, and their reports.
#include "api/load_stats.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"

namespace quanta::api {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

LatencySummary summarize_latency(const std::vector<double>& seconds) {
  LatencySummary s;
  if (seconds.empty()) return s;
  double sum = 0.0;
  for (double x : seconds) sum += x;
  s.mean = sum / static_cast<double>(seconds.size());
  s.p50 = percentile(seconds, 50);
  s.p90 = percentile(seconds, 90);
  s.p99 = percentile(seconds, 99);
  return s;
}

double time_per_output_token(const RequestSample& s) {
  return (s.e2e_s - s.ttft_s) / static_cast<double>(s.output_tokens - 1);
}

LoadReport summarize(const std::vector<RequestSample>& samples, double duration_s) {
  LoadReport r;
  r.duration_s = duration_s;
  std::vector<double> ttft, tpot, e2e;
  for (const RequestSample& s : samples) {
    if (!s.ok) {
      ++r.errors;
      const bool seen = std::find(r.error_examples.begin(), r.error_examples.end(), s.error) !=
                        r.error_examples.end();
      if (!seen && r.error_examples.size() < 5) r.error_examples.push_back(s.error);
      continue;
    }
    ++r.completed;
    r.total_input_tokens += s.prompt_tokens;
    r.total_output_tokens += s.output_tokens;
    ttft.push_back(s.ttft_s);
    e2e.push_back(s.e2e_s);
    if (s.output_tokens > 1) tpot.push_back(time_per_output_token(s));
  }
  if (duration_s > 0.0) {
    r.request_throughput = r.completed / duration_s;
    r.output_throughput = static_cast<double>(r.total_output_tokens) / duration_s;
  }
  r.ttft = summarize_latency(ttft);
  r.tpot = summarize_latency(tpot);
  r.e2e = summarize_latency(e2e);
  return r;
}

std::vector<double> poisson_arrivals(int32_t n, double rate, uint64_t seed) {
  if (!(rate > 0.0) || !std::isfinite(rate)) fail("request rate must be > 0, got %g", rate);
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  std::vector<double> times;
  double t = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    times.push_back(t);
    t += gap(rng);
  }
  return times;
}

namespace {

std::string latency_row(const char* name, const LatencySummary& s) {
  return strformat("%-10s %10.1f %10.1f %10.1f %10.1f\n", name, s.mean * 1e3, s.p50 * 1e3,
                   s.p90 * 1e3, s.p99 * 1e3);
}

nlohmann::json latency_json(const LatencySummary& s) {
  return {{"mean", s.mean * 1e3}, {"p50", s.p50 * 1e3}, {"p90", s.p90 * 1e3}, {"p99", s.p99 * 1e3}};
}

}  // namespace

std::string report_text(const LoadReport& r) {
  std::string out;
  out += strformat("requests:            %d completed, %d errors in %.2f s\n", r.completed,
                   r.errors, r.duration_s);
  out += strformat("request throughput:  %.2f requests/s\n", r.request_throughput);
  out += strformat("output throughput:   %.1f tokens/s\n", r.output_throughput);
  const double per = r.completed ? static_cast<double>(r.total_input_tokens) / r.completed : 0.0;
  out += strformat("input tokens:        %lld (%.1f per request)\n",
                   static_cast<long long>(r.total_input_tokens), per);
  out += strformat("output tokens:       %lld\n", static_cast<long long>(r.total_output_tokens));
  out += strformat("%-10s %10s %10s %10s %10s\n", "(ms)", "mean", "p50", "p90", "p99");
  out += latency_row("TTFT", r.ttft) + latency_row("TPOT", r.tpot) + latency_row("E2E", r.e2e);
  for (const std::string& e : r.error_examples) out += "error: " + e + "\n";
  return out;
}

std::string report_json(const LoadReport& r) {
  const nlohmann::json j = {{"completed", r.completed},
                            {"errors", r.errors},
                            {"duration_s", r.duration_s},
                            {"request_throughput", r.request_throughput},
                            {"output_throughput", r.output_throughput},
                            {"total_input_tokens", r.total_input_tokens},
                            {"total_output_tokens", r.total_output_tokens},
                            {"ttft_ms", latency_json(r.ttft)},
                            {"tpot_ms", latency_json(r.tpot)},
                            {"e2e_ms", latency_json(r.e2e)},
                            {"error_examples", r.error_examples}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace quanta::api
