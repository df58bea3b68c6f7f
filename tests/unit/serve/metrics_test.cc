// Prometheus text exposition: exact histogram lines (cumulative buckets, +Inf, _sum, _count),
// HELP/TYPE headers for every metric, counters by outcome and HTTP status, preemptions, gauges,
// numbers; the service-time window and the Retry-After estimate built on it.
#include "serve/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <sstream>
#include <string>

namespace quanta::serve {
namespace {

TEST(Metrics, HistogramRendersCumulativeBucketsExactly) {
  Histogram h({0.1, 0.5, 2.0});
  for (double v : {0.05, 0.1, 0.3, 1.0, 7.0}) h.observe(v);  // 0.1 falls in le="0.1"
  std::string out;
  h.render("x_seconds", out);
  EXPECT_EQ(out,
            "x_seconds_bucket{le=\"0.1\"} 2\n"
            "x_seconds_bucket{le=\"0.5\"} 3\n"
            "x_seconds_bucket{le=\"2\"} 4\n"
            "x_seconds_bucket{le=\"+Inf\"} 5\n"
            "x_seconds_sum 8.45\n"
            "x_seconds_count 5\n");
  EXPECT_EQ(h.cumulative(0), 2u);
  EXPECT_EQ(h.cumulative(3), 5u);
}

TEST(Metrics, NumbersUseShortestRoundTripForm) {
  EXPECT_EQ(prometheus_number(0.005), "0.005");
  EXPECT_EQ(prometheus_number(2560.0), "2560");
  EXPECT_EQ(prometheus_number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(prometheus_number(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(prometheus_number(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(prometheus_number(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, EveryMetricHasHelpAndTypeAndTheRecordedValues) {
  Metrics m;
  RequestTimes t;
  t.queue = 0.2;
  t.ttft = 0.5;
  t.tpot = 0.05;
  t.e2e = 1.2;
  m.record_request(FinishReason::kStop, 10, 7, t);
  m.record_request(FinishReason::kLength, 4, 16, RequestTimes{});
  m.record_request(FinishReason::kCancelled, 3, 0, RequestTimes{});
  m.record_error_response(429);
  m.record_error_response(400);
  m.record_error_response(429);
  m.record_error_response(500);
  EngineGauges g;
  g.running = 3;
  g.running_sequences = 4;
  g.waiting = 2;
  g.kv_blocks_used = 5;
  g.kv_blocks_free = 27;
  g.prefix_queried_tokens = 40;
  g.prefix_hit_tokens = 10;
  g.spec_draft_tokens = 12;
  g.spec_accepted_tokens = 7;
  g.spec_verify_passes = 4;
  g.spec_draft_passes = 9;
  g.spec_draft_seconds = 0.125;
  g.spec_draft_kv_blocks_used = 6;
  g.preemptions = 11;
  m.set_gauges(g);
  m.record_step(0, 100, 0.5);  // a prefill step
  m.record_step(16, 0, 0.25);  // a decode step
  m.record_step(3, 29, 0.25);  // decodes with a prompt chunk
  const std::string text = m.text();
  for (const char* line : {
           "# HELP quanta_time_to_first_token_seconds Time from request arrival to its first "
           "generated token.",
           "# TYPE quanta_time_to_first_token_seconds histogram",
           "quanta_time_to_first_token_seconds_bucket{le=\"0.25\"} 0",
           "quanta_time_to_first_token_seconds_bucket{le=\"0.5\"} 1",
           "quanta_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1",
           "quanta_time_to_first_token_seconds_sum 0.5",
           "quanta_time_to_first_token_seconds_count 1",
           "# TYPE quanta_time_per_output_token_seconds histogram",
           "quanta_time_per_output_token_seconds_bucket{le=\"0.05\"} 1",
           "# TYPE quanta_e2e_request_latency_seconds histogram",
           "quanta_e2e_request_latency_seconds_bucket{le=\"1\"} 0",
           "quanta_e2e_request_latency_seconds_bucket{le=\"1.5\"} 1",
           "# TYPE quanta_request_queue_time_seconds histogram",
           "quanta_request_queue_time_seconds_sum 0.2",
           "# TYPE quanta_requests_total counter",
           "quanta_requests_total{outcome=\"stop\"} 1",
           "quanta_requests_total{outcome=\"length\"} 1",
           "quanta_requests_total{outcome=\"cancelled\"} 1",
           "quanta_requests_total{outcome=\"rejected\",status=\"400\"} 1",
           "quanta_requests_total{outcome=\"rejected\",status=\"429\"} 2",
           "quanta_requests_total{outcome=\"error\",status=\"500\"} 1",
           "# TYPE quanta_prompt_tokens_total counter",
           "quanta_prompt_tokens_total 17",
           "quanta_generation_tokens_total 23",
           "quanta_prefix_cache_queried_tokens_total 40",
           "quanta_prefix_cache_hit_tokens_total 10",
           "# TYPE quanta_spec_draft_tokens_total counter",
           "quanta_spec_draft_tokens_total 12",
           "quanta_spec_accepted_tokens_total 7",
           "quanta_spec_verify_passes_total 4",
           "# TYPE quanta_spec_draft_model_passes_total counter",
           "quanta_spec_draft_model_passes_total 9",
           "quanta_spec_draft_model_seconds_total 0.125",
           "# TYPE quanta_spec_draft_kv_blocks_used gauge",
           "quanta_spec_draft_kv_blocks_used 6",
           "# HELP quanta_preemptions_total Sequences preempted when KV blocks ran out (blocks "
           "freed, recomputed later).",
           "# TYPE quanta_preemptions_total counter",
           "quanta_preemptions_total 11",
           "# TYPE quanta_requests_running gauge",
           "quanta_requests_running 3",
           "# TYPE quanta_sequences_running gauge",
           "quanta_sequences_running 4",
           "quanta_requests_waiting 2",
           "quanta_kv_blocks_used 5",
           "quanta_kv_blocks_free 27",
           "quanta_prefix_cache_hit_rate 0.25",
           "# TYPE quanta_iteration_tokens histogram",
           "quanta_iteration_tokens_bucket{le=\"8\"} 0",
           "quanta_iteration_tokens_bucket{le=\"16\"} 1",
           "quanta_iteration_tokens_bucket{le=\"32\"} 2",
           "quanta_iteration_tokens_bucket{le=\"128\"} 3",
           "quanta_iteration_tokens_bucket{le=\"8192\"} 3",
           "quanta_iteration_tokens_sum 148",
           "quanta_iteration_tokens_count 3",
           "# TYPE quanta_step_decode_tokens_total counter",
           "quanta_step_decode_tokens_total 19",
           "quanta_step_prompt_tokens_total 129",
           "quanta_forward_seconds_total 1",
       }) {
    EXPECT_TRUE(has_line(text, line)) << "missing line: " << line << "\n" << text;
  }
  // Structure: each metric family once, HELP then TYPE before its samples; every sample line
  // belongs to the family announced last; the text ends with a newline.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream in(text);
  std::string line, family, type;
  std::set<std::string> families;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(families.insert(family).second) << "duplicate family " << family;
      ASSERT_TRUE(std::getline(in, line));
      EXPECT_EQ(line.rfind("# TYPE " + family + " ", 0), 0u) << line;
      continue;
    }
    ++samples;
    EXPECT_EQ(line.rfind(family, 0), 0u) << line << " outside family " << family;
    EXPECT_NE(line.find(' '), std::string::npos) << line;
  }
  EXPECT_EQ(families.size(), 26u);
  EXPECT_GT(samples, 60);
}

TEST(Metrics, MeanServiceTimeOfTheLastFinishedRequests) {
  Metrics m;
  EXPECT_EQ(m.mean_service_seconds(), 0.0);
  RequestTimes t;
  t.queue = 1.0;
  t.e2e = 3.0;  // service 2 s
  m.record_request(FinishReason::kStop, 1, 1, t);
  t.queue = -1.0;  // never scheduled (not observed): all of e2e is service
  t.e2e = 4.0;
  m.record_request(FinishReason::kLength, 1, 1, t);
  EXPECT_DOUBLE_EQ(m.mean_service_seconds(), 3.0);
  t.e2e = 100.0;  // cancelled requests say nothing about the service rate
  m.record_request(FinishReason::kCancelled, 1, 0, t);
  EXPECT_DOUBLE_EQ(m.mean_service_seconds(), 3.0);
  t.queue = 0.5;
  t.e2e = 1.0;  // the window keeps the most recent kServiceWindow: 0.5 s each
  for (size_t i = 0; i < Metrics::kServiceWindow; ++i) {
    m.record_request(FinishReason::kStop, 1, 1, t);
  }
  EXPECT_DOUBLE_EQ(m.mean_service_seconds(), 0.5);
}

TEST(Metrics, RetryAfterIsTheQueueDrainTimeClampedToOneToSixtySeconds) {
  EXPECT_EQ(retry_after_seconds(64, 2.0, 16), 8);   // 64 x 2 s / 16 slots
  EXPECT_EQ(retry_after_seconds(10, 1.5, 4), 4);    // 3.75 rounds up
  EXPECT_EQ(retry_after_seconds(3, 0.01, 16), 1);   // at least 1
  EXPECT_EQ(retry_after_seconds(64, 30.0, 2), 60);  // at most 60
  EXPECT_EQ(retry_after_seconds(64, 0.0, 16), 1);   // nothing finished yet
  EXPECT_EQ(retry_after_seconds(0, 5.0, 1), 5);     // no queue: one request's service
  EXPECT_EQ(retry_after_seconds(8, 5.0, 0), 40);    // slots < 1 count as 1
  EXPECT_EQ(retry_after_seconds(8, std::numeric_limits<double>::quiet_NaN(), 4), 1);
  // From recorded requests, as the engine computes it for a 429.
  Metrics m;
  RequestTimes t;
  t.queue = 2.0;
  t.e2e = 8.0;
  m.record_request(FinishReason::kStop, 1, 1, t);
  EXPECT_EQ(retry_after_seconds(16, m.mean_service_seconds(), 4), 24);
}

TEST(Metrics, HitRateIsZeroBeforeAnyLookup) {
  Metrics m;
  EXPECT_TRUE(has_line(m.text(), "quanta_prefix_cache_hit_rate 0"));
  EXPECT_TRUE(has_line(m.text(), "quanta_requests_total{outcome=\"stop\"} 0"));
}

}  // namespace
}  // namespace quanta::serve
