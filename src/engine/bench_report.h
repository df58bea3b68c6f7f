// Reports of `quanta bench` results: a Markdown table in llama-bench's layout and a JSON array
// with one object per test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/bench.h"

namespace quanta::bench {

struct ReportInfo {
  std::string model;        // "tinyllama-1.1b" or the model file's name
  std::string type;         // weight type label: "Q4_0", "Q4_K_M", "F16"
  uint64_t size_bytes = 0;  // bytes of all tensors
  int64_t n_params = 0;
  double bandwidth_1t = 0.0;  // measured memory read bytes/s with one thread; 0: not measured
  double bandwidth_nt = 0.0;  // measured with bandwidth_threads threads; 0: not measured
  int32_t bandwidth_threads = 0;
  double bandwidth = 0.0;            // bytes/s the roofline uses; 0: none
  bool bandwidth_disturbed = false;  // no measured pass ran without other processes
  int32_t repetitions = 0;
  std::string kv_fill;  // "prefill" or "random"
  std::string kv_type;  // "f16" or "f32"
  std::string isa;      // kernel table in use: "ref", "avx2", ...
};

// | model | type | size | params | threads | test | t/s | roofline | rows, then notes on the
// statistics, the bandwidth and the context fill: header + rows + notes.
std::string markdown_report(const ReportInfo& info, const std::vector<BenchResult>& results);
std::string markdown_header();
std::string markdown_row(const ReportInfo& info, const BenchResult& r);
std::string markdown_notes(const ReportInfo& info);

// [{"test": "tg128", "type": "Q4_0", "tokens_per_s": <median>, "sd": ..., "mean": ...,
//   "samples": [...], "threads": 2, "n_prompt": .., "n_gen": .., "n_seq": .., "model": ..,
//   "size_bytes": .., "n_params": .., "kv_type": .., "isa": .., and for decode tests
//   "roofline_pct", "weight_bytes_per_token", "bandwidth_gb_s"}, ...]; roofline_pct is null without
//   a bandwidth.
std::string json_report(const ReportInfo& info, const std::vector<BenchResult>& results);

}  // namespace quanta::bench
