// Serving metrics (latency histograms, request and token counters, engine gauges) and their
// Prometheus text exposition, format 0.0.4. Thread-safe: the engine thread records, HTTP
// threads read.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/request.h"

namespace quanta::serve {

// A Prometheus histogram: counts of observations <= each upper bound, plus +Inf, sum, count.
// Not thread-safe by itself (Metrics locks around it).
class Histogram {
 public:
  // `bounds`: finite upper bounds, strictly increasing (QUANTA_ASSERTed).
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Observations <= bounds()[i] (cumulative); i == bounds().size() is +Inf (== count()).
  uint64_t cumulative(size_t i) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // Appends "<name>_bucket{le="..."} N" lines for every bound and +Inf, then _sum and _count.
  void render(const std::string& name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // [bounds + 1] per bucket (not cumulative); last = above all
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

// The latencies of one finished request, in seconds; negative = not observed (e.g. no token
// was generated, so there is no time to first token).
struct RequestTimes {
  double queue = -1.0;  // submit -> first scheduled
  double ttft = -1.0;   // submit -> first token of any choice
  double tpot = -1.0;   // (e2e - ttft) / (tokens per choice - 1), when it generated >= 2
  double e2e = -1.0;    // submit -> last choice finished
};

// Engine state sampled after every step.
struct EngineGauges {
  int32_t running = 0;            // requests with at least one choice holding blocks
  int32_t running_sequences = 0;  // choices (sequences) holding blocks: n > 1 counts n
  int32_t waiting = 0;  // requests submitted and not yet scheduled
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_free = 0;
  int64_t prefix_queried_tokens = 0;  // cumulative, from the block pool
  int64_t prefix_hit_tokens = 0;
  int64_t spec_draft_tokens = 0;          // cumulative: draft tokens verified
  int64_t spec_accepted_tokens = 0;       // cumulative: of them accepted
  int64_t spec_verify_passes = 0;         // cumulative: sequence steps that verified drafts
  int64_t spec_draft_passes = 0;          // cumulative: draft-model forward passes
  double spec_draft_seconds = 0.0;        // cumulative: time in draft-model forward passes
  int32_t spec_draft_kv_blocks_used = 0;  // draft-model KV blocks in use
  int64_t preemptions = 0;  // cumulative: sequences preempted (blocks freed, recomputed later)
};

// Seconds a client refused with 429 (queue full) should wait: the time the engine needs to
// drain the queue, max(`waiting`, 1) requests x `mean_service_seconds` (a request's time from
// first scheduling to its end) / `slots` (requests computing at once), rounded up and clamped
// to [1, 60]. An unknown service time (<= 0: nothing finished yet) gives 1.
int32_t retry_after_seconds(int32_t waiting, double mean_service_seconds, int32_t slots);

class Metrics {
 public:
  Metrics();

  // A request that reached the engine finished: its outcome (kStop, kLength or kCancelled;
  // the engine picks one per request), prompt tokens, generated tokens of all choices, times.
  void record_request(FinishReason outcome, int32_t prompt_tokens, int32_t completion_tokens,
                      const RequestTimes& times);
  // A request answered with an HTTP error: 4xx (rejected before or by the engine) counts as
  // outcome "rejected", 5xx (a failure of the server) as outcome "error".
  void record_error_response(int http_status);
  void set_gauges(const EngineGauges& gauges);
  // One engine step (forward pass): tokens computed for decodes (a decode's last token plus
  // its draft tokens), tokens computed for prompts (prefill chunks; recomputation after a
  // preemption included; prefix-cache hits are not computed) and the pass's seconds.
  void record_step(int32_t decode_tokens, int32_t prompt_tokens, double forward_seconds);
  // Mean service time (e2e - queue) of the last kServiceWindow requests that finished with
  // kStop or kLength; 0 before the first.
  double mean_service_seconds() const;

  static constexpr size_t kServiceWindow = 64;

  // The whole exposition, every metric preceded by its # HELP and # TYPE lines.
  std::string text() const;

 private:
  mutable std::mutex mu_;
  Histogram ttft_;
  Histogram tpot_;
  Histogram e2e_;
  Histogram queue_;
  Histogram step_tokens_;  // tokens per engine step (decode + prompt)
  uint64_t step_decode_tokens_ = 0;
  uint64_t step_prompt_tokens_ = 0;
  double forward_seconds_ = 0.0;
  uint64_t stopped_ = 0;
  uint64_t length_ = 0;
  uint64_t cancelled_ = 0;
  std::map<int, uint64_t> error_responses_;  // by HTTP status
  uint64_t prompt_tokens_ = 0;
  uint64_t generation_tokens_ = 0;
  std::deque<double> service_;  // [<= kServiceWindow] service seconds, most recent last
  EngineGauges gauges_;
};

// A number as Prometheus prints it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string prometheus_number(double value);

}  // namespace quanta::serve
