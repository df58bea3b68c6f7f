// Metrics recording and the Prometheus text exposition (format 0.0.4).
#include "serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "core/error.h"

namespace quanta::serve {

namespace {

// Bucket bounds after vLLM's (vllm/engine/metrics.py), which cover CPU-sized latencies too.
std::vector<double> ttft_bounds() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> tpot_bounds() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> latency_bounds() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

// Tokens per engine step: powers of two up to well past the default --max-batch-tokens.
std::vector<double> step_token_bounds() {
  std::vector<double> b;
  for (double v = 1.0; v <= 8192.0; v *= 2.0) b.push_back(v);
  return b;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name_and_labels, double value) {
  out += name_and_labels;
  out += ' ';
  out += prometheus_number(value);
  out += '\n';
}

void histogram(std::string& out, const char* name, const char* help, const Histogram& h) {
  header(out, name, "histogram", help);
  h.render(name, out);
}

void scalar(std::string& out, const char* name, const char* type, const char* help, double value) {
  header(out, name, type, help);
  sample(out, name, value);
}

}  // namespace

int32_t retry_after_seconds(int32_t waiting, double mean_service_seconds, int32_t slots) {
  constexpr double kMin = 1.0, kMax = 60.0;
  if (!(mean_service_seconds > 0.0)) return static_cast<int32_t>(kMin);
  const double drain = static_cast<double>(std::max(waiting, 1)) * mean_service_seconds /
                       static_cast<double>(std::max(slots, 1));
  return static_cast<int32_t>(std::clamp(std::ceil(drain), kMin, kMax));
}

std::string prometheus_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, res.ptr);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    QUANTA_ASSERT(std::isfinite(bounds_[i]));
    QUANTA_ASSERT(i == 0 || bounds_[i - 1] < bounds_[i]);
  }
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

uint64_t Histogram::cumulative(size_t i) const {
  QUANTA_ASSERT(i <= bounds_.size());
  uint64_t total = 0;
  for (size_t j = 0; j <= i; ++j) total += counts_[j];
  return total;
}

void Histogram::render(const std::string& name, std::string& out) const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i];
    const std::string le = i < bounds_.size() ? prometheus_number(bounds_[i]) : "+Inf";
    sample(out, name + "_bucket{le=\"" + le + "\"}", static_cast<double>(total));
  }
  sample(out, name + "_sum", sum_);
  sample(out, name + "_count", static_cast<double>(count_));
}

Metrics::Metrics()
    : ttft_(ttft_bounds()),
      tpot_(tpot_bounds()),
      e2e_(latency_bounds()),
      queue_(latency_bounds()),
      step_tokens_(step_token_bounds()) {}

void Metrics::record_request(FinishReason outcome, int32_t prompt_tokens, int32_t completion_tokens,
                             const RequestTimes& times) {
  std::lock_guard<std::mutex> lock(mu_);
  switch (outcome) {
    case FinishReason::kStop:
      ++stopped_;
      break;
    case FinishReason::kLength:
      ++length_;
      break;
    default:
      ++cancelled_;
      break;
  }
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generation_tokens_ += static_cast<uint64_t>(completion_tokens);
  if (times.queue >= 0) queue_.observe(times.queue);
  if (times.ttft >= 0) ttft_.observe(times.ttft);
  if (times.tpot >= 0) tpot_.observe(times.tpot);
  if (times.e2e >= 0) e2e_.observe(times.e2e);
  if ((outcome == FinishReason::kStop || outcome == FinishReason::kLength) && times.e2e >= 0) {
    service_.push_back(std::max(0.0, times.e2e - std::max(0.0, times.queue)));
    if (service_.size() > kServiceWindow) service_.pop_front();
  }
}

double Metrics::mean_service_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (service_.empty()) return 0.0;
  double sum = 0.0;
  for (double s : service_) sum += s;
  return sum / static_cast<double>(service_.size());
}

void Metrics::record_error_response(int http_status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++error_responses_[http_status];
}

void Metrics::record_step(int32_t decode_tokens, int32_t prompt_tokens, double forward_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  step_tokens_.observe(static_cast<double>(decode_tokens + prompt_tokens));
  step_decode_tokens_ += static_cast<uint64_t>(std::max(decode_tokens, 0));
  step_prompt_tokens_ += static_cast<uint64_t>(std::max(prompt_tokens, 0));
  forward_seconds_ += std::max(forward_seconds, 0.0);
}

void Metrics::set_gauges(const EngineGauges& gauges) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_ = gauges;
}

std::string Metrics::text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(8192);
  histogram(out, "quanta_time_to_first_token_seconds",
            "Time from request arrival to its first generated token.", ttft_);
  histogram(out, "quanta_time_per_output_token_seconds",
            "Mean time between output tokens of a request, after the first.", tpot_);
  histogram(out, "quanta_e2e_request_latency_seconds",
            "Time from request arrival to its last token.", e2e_);
  histogram(out, "quanta_request_queue_time_seconds",
            "Time from request arrival to its first scheduling.", queue_);
  histogram(out, "quanta_iteration_tokens",
            "Tokens computed per engine step (decode tokens + prompt chunk tokens).",
            step_tokens_);
  scalar(out, "quanta_step_decode_tokens_total", "counter",
         "Tokens computed for decodes (a sequence's last token plus its draft tokens).",
         static_cast<double>(step_decode_tokens_));
  scalar(out, "quanta_step_prompt_tokens_total", "counter",
         "Prompt tokens computed (prefill chunks, recomputation after preemption included; "
         "prefix-cache hits excluded).",
         static_cast<double>(step_prompt_tokens_));
  scalar(out, "quanta_forward_seconds_total", "counter",
         "Time in the model's forward passes (the engine is busy computing).",
         forward_seconds_);
  header(out, "quanta_requests_total", "counter", "Requests by outcome.");
  sample(out, "quanta_requests_total{outcome=\"stop\"}", static_cast<double>(stopped_));
  sample(out, "quanta_requests_total{outcome=\"length\"}", static_cast<double>(length_));
  sample(out, "quanta_requests_total{outcome=\"cancelled\"}", static_cast<double>(cancelled_));
  for (const auto& [status, n] : error_responses_) {
    const char* outcome = status < 500 ? "rejected" : "error";
    sample(out,
           strformat("quanta_requests_total{outcome=\"%s\",status=\"%d\"}", outcome, status),
           static_cast<double>(n));
  }
  scalar(out, "quanta_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
         static_cast<double>(prompt_tokens_));
  scalar(out, "quanta_generation_tokens_total", "counter",
         "Generated tokens of finished requests, all choices.",
         static_cast<double>(generation_tokens_));
  scalar(out, "quanta_prefix_cache_queried_tokens_total", "counter",
         "Prompt tokens looked up in the prefix cache.",
         static_cast<double>(gauges_.prefix_queried_tokens));
  scalar(out, "quanta_prefix_cache_hit_tokens_total", "counter",
         "Prompt tokens found in the prefix cache.",
         static_cast<double>(gauges_.prefix_hit_tokens));
  scalar(out, "quanta_spec_draft_tokens_total", "counter",
         "Draft tokens verified by speculative decoding (n-gram lookup or draft model).",
         static_cast<double>(gauges_.spec_draft_tokens));
  scalar(out, "quanta_spec_accepted_tokens_total", "counter",
         "Draft tokens accepted by speculative decoding.",
         static_cast<double>(gauges_.spec_accepted_tokens));
  scalar(out, "quanta_spec_verify_passes_total", "counter",
         "Sequence steps that verified draft tokens (each yields accepted + 1 tokens).",
         static_cast<double>(gauges_.spec_verify_passes));
  scalar(out, "quanta_spec_draft_model_passes_total", "counter",
         "Forward passes of the draft model (catch-up and draft steps, all sequences batched).",
         static_cast<double>(gauges_.spec_draft_passes));
  scalar(out, "quanta_spec_draft_model_seconds_total", "counter",
         "Time spent in draft-model forward passes.", gauges_.spec_draft_seconds);
  scalar(out, "quanta_spec_draft_kv_blocks_used", "gauge", "Draft-model KV cache blocks in use.",
         gauges_.spec_draft_kv_blocks_used);
  scalar(out, "quanta_preemptions_total", "counter",
         "Sequences preempted when KV blocks ran out (blocks freed, recomputed later).",
         static_cast<double>(gauges_.preemptions));
  scalar(out, "quanta_requests_running", "gauge",
         "Requests computing (at least one choice holding KV blocks).", gauges_.running);
  scalar(out, "quanta_sequences_running", "gauge",
         "Sequences computing (choices holding KV blocks; a request with n > 1 has n).",
         gauges_.running_sequences);
  scalar(out, "quanta_requests_waiting", "gauge", "Requests queued, not yet scheduled.",
         gauges_.waiting);
  scalar(out, "quanta_kv_blocks_used", "gauge", "KV cache blocks in use.", gauges_.kv_blocks_used);
  scalar(out, "quanta_kv_blocks_free", "gauge",
         "KV cache blocks free (including cached prefix blocks that may be evicted).",
         gauges_.kv_blocks_free);
  const double rate = gauges_.prefix_queried_tokens > 0
                          ? static_cast<double>(gauges_.prefix_hit_tokens) /
                                static_cast<double>(gauges_.prefix_queried_tokens)
                          : 0.0;
  scalar(out, "quanta_prefix_cache_hit_rate", "gauge",
         "Prefix cache hits / queried tokens since start.", rate);
  return out;
}

}  // namespace quanta::serve
