// Markdown and JSON reports of benchmark results.
#include "engine/bench_report.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace quanta::bench {
namespace {

std::string size_label(uint64_t bytes) {
  return strformat("%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

std::string params_label(int64_t n) {
  if (n >= 1000000000) return strformat("%.2f B", n / 1e9);
  if (n >= 1000000) return strformat("%.2f M", n / 1e6);
  return strformat("%.2f K", n / 1e3);
}

std::string roofline_label(const BenchResult& r) {
  return r.roofline_pct >= 0 ? strformat("%.1f%%", r.roofline_pct) : std::string();
}

}  // namespace

std::string markdown_header() {
  return "| model | type | size | params | threads | test | t/s | roofline |\n"
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
}

std::string markdown_row(const ReportInfo& info, const BenchResult& r) {
  return strformat("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s |\n", info.model.c_str(),
                   info.type.c_str(), size_label(info.size_bytes).c_str(),
                   params_label(info.n_params).c_str(), r.n_threads, r.test.name().c_str(),
                   r.median, r.sd, roofline_label(r).c_str());
}

std::string markdown_notes(const ReportInfo& info) {
  std::string out = strformat("\nt/s: median ± sd of %d repetitions. ", info.repetitions);
  out += "batchB: B sequences decoded together, t/s = B x generated tokens / time.\n";
  if (info.bandwidth_1t > 0 || info.bandwidth_nt > 0) {
    out += "Memory read bandwidth:";
    if (info.bandwidth_1t > 0) out += strformat(" %.1f GB/s (1 thread)", info.bandwidth_1t / 1e9);
    if (info.bandwidth_nt > 0) {
      out += strformat("%s %.1f GB/s (%d threads)", info.bandwidth_1t > 0 ? "," : "",
                       info.bandwidth_nt / 1e9, info.bandwidth_threads);
    }
    out += info.bandwidth_disturbed ? " (disturbed by other processes: too low). " : ". ";
  }
  if (info.bandwidth > 0) {
    out += strformat("roofline = weight bytes read per token x t/s / %.1f GB/s.\n",
                     info.bandwidth / 1e9);
  }
  out += strformat("Kernels %s; KV cache %s; context before decode tests filled by %s.\n",
                   info.isa.c_str(), info.kv_type.c_str(), info.kv_fill.c_str());
  return out;
}

std::string markdown_report(const ReportInfo& info, const std::vector<BenchResult>& results) {
  std::string out = markdown_header();
  for (const BenchResult& r : results) out += markdown_row(info, r);
  return out + markdown_notes(info);
}

std::string json_report(const ReportInfo& info, const std::vector<BenchResult>& results) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const BenchResult& r : results) {
    nlohmann::ordered_json j;
    j["test"] = r.test.name();
    j["type"] = info.type;
    j["tokens_per_s"] = r.median;
    j["sd"] = r.sd;
    j["mean"] = r.mean;
    j["samples"] = r.samples;
    j["threads"] = r.n_threads;
    j["n_prompt"] = r.test.n_prompt;
    j["n_gen"] = r.test.n_gen;
    j["n_seq"] = r.test.n_seq;
    j["model"] = info.model;
    j["size_bytes"] = info.size_bytes;
    j["n_params"] = info.n_params;
    j["kv_type"] = info.kv_type;
    j["isa"] = info.isa;
    if (r.test.is_decode()) {
      j["roofline_pct"] = r.roofline_pct >= 0 ? nlohmann::ordered_json(r.roofline_pct) : nullptr;
      j["weight_bytes_per_token"] = r.weight_bytes_per_token;
      j["bandwidth_gb_s"] =
          info.bandwidth > 0 ? nlohmann::ordered_json(info.bandwidth / 1e9) : nullptr;
    }
    arr.push_back(std::move(j));
  }
  return arr.dump(2) + "\n";
}

}  // namespace quanta::bench
