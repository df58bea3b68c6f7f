// Statistics of a load test (vLLM benchmark_serving's metrics): per-request samples reduced to
// throughput and TTFT / TPOT / end-to-end latency percentiles, Poisson arrival times, and the
// text and JSON reports of `quanta loadtest`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quanta::api {

// One request as the client saw it.
struct RequestSample {
  bool ok = false;
  double ttft_s = 0.0;        // send -> first generated text (= e2e without streaming)
  double e2e_s = 0.0;         // send -> last byte
  int32_t prompt_tokens = 0;  // from the response's usage
  int32_t output_tokens = 0;
  std::string error;  // when !ok
};

struct LatencySummary {
  double mean = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0;  // seconds; 0 without samples
};

struct LoadReport {
  int32_t completed = 0, errors = 0;
  double duration_s = 0.0;
  double request_throughput = 0.0;  // completed requests / s
  double output_throughput = 0.0;   // output tokens of completed requests / s
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  LatencySummary ttft, tpot, e2e;           // TPOT over requests with > 1 output token
  std::vector<std::string> error_examples;  // the first few distinct error messages
};

// The p-th percentile (p in [0, 100]) with linear interpolation between order statistics
// (numpy's default). 0 for an empty input.
double percentile(std::vector<double> values, double p);
LatencySummary summarize_latency(const std::vector<double>& seconds);
// TPOT of one request: (e2e - ttft) / (output_tokens - 1); requires output_tokens > 1.
double time_per_output_token(const RequestSample& s);
LoadReport summarize(const std::vector<RequestSample>& samples, double duration_s);

// Send times (seconds from the start, increasing) of n requests arriving as a Poisson process
// of `rate` per second: exponential gaps, seeded.
std::vector<double> poisson_arrivals(int32_t n, double rate, uint64_t seed);

std::string report_text(const LoadReport& r);
std::string report_json(const LoadReport& r);  // one JSON object, latencies in ms

}  // namespace quanta::api
