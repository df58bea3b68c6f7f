// `quanta loadtest`: drives a running OpenAI-compatible server the way vLLM's
// benchmark_serving does (fixed concurrency or Poisson arrivals, ignore_eos, greedy) and prints
// requests/s, output tokens/s and TTFT / TPOT / end-to-end latency percentiles.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "api/load_client.h"
#include "api/load_stats.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"

namespace quanta::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadFlags {
  std::string url, api_key, model, prompt_file;
  int32_t requests = 0, concurrency = 0, prompt_len = 128, max_tokens = 64;
  float rate = 0.0f, duration = 0.0f;
  uint64_t seed = 0;
  bool stream = false, json = false;
};

void add_flags(ArgParser& args, LoadFlags& f) {
  args.add_string("--url", "URL", &f.url, "server base URL, e.g. http://127.0.0.1:8080");
  args.add_int("-n, --requests", "N", &f.requests, "requests to send");
  args.add_int("-c, --concurrency", "C", &f.concurrency,
               "requests in flight at once (cap with --rate)");
  args.add_float("--rate", "R", &f.rate, "Poisson arrivals, R requests/s on average");
  args.add_int("--prompt-len", "L", &f.prompt_len,
               "prompt length in server tokens, about (default 128)");
  args.add_int("--max-tokens", "T", &f.max_tokens,
               "tokens generated per request, ignore_eos (default 64)");
  args.add_string("--prompt-file", "PATH", &f.prompt_file, "build prompts from this text's words");
  args.add_flag("--stream", &f.stream, "stream responses (measures TTFT and TPOT)");
  args.add_flag("--json", &f.json, "print the results as one JSON object");
  args.add_string("--api-key", "KEY", &f.api_key, "send 'Authorization: Bearer KEY'");
  args.add_string("--model", "ID", &f.model, "model field of the requests (default: omitted)");
  args.add_float("--duration", "S", &f.duration,
                 "with --concurrency: keep sending for S seconds (soak tests); --requests caps it");
  args.add_uint64("--seed", "S", &f.seed, "seed of prompts and arrivals (default 0)");
  args.require("--url");
}

void validate(const LoadFlags& f) {
  if (f.concurrency < 0) fail("--concurrency must be >= 1");
  if (f.rate < 0.0f) fail("--rate must be > 0");
  if (f.concurrency == 0 && f.rate == 0.0f) fail("give --concurrency C or --rate R");
  if (f.duration < 0.0f) fail("--duration must be >= 0");
  if (f.duration > 0.0f && f.concurrency == 0) fail("--duration needs --concurrency");
  if (f.requests < 0 || (f.requests == 0 && f.duration == 0.0f)) fail("--requests must be >= 1");
  if (f.prompt_len < 1) fail("--prompt-len must be >= 1");
  if (f.max_tokens < 1) fail("--max-tokens must be >= 1");
}

std::vector<std::string> prompt_words(const LoadFlags& f) {
  if (f.prompt_file.empty()) return api::default_words();
  FILE* in = std::fopen(f.prompt_file.c_str(), "rb");
  if (!in) fail("cannot open --prompt-file %s", f.prompt_file.c_str());
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0) text.append(buf, n);
  std::fclose(in);
  std::vector<std::string> words = api::split_words(text);
  if (words.empty()) fail("--prompt-file %s has no words", f.prompt_file.c_str());
  return words;
}

class Collector {
 public:
  void add(const api::RequestSample& s) {
    std::lock_guard<std::mutex> lock(mu_);
    samples_.push_back(s);
  }
  std::vector<api::RequestSample> take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(samples_);
  }

 private:
  std::mutex mu_;
  std::vector<api::RequestSample> samples_;
};

// Fixed concurrency: C workers, each with its own connection, take request numbers in turn.
void run_closed_loop(const LoadFlags& f, const api::LoadTarget& target,
                     const std::vector<std::string>& words, int32_t n_words, Collector& out) {
  std::atomic<int64_t> next{0};
  const int64_t limit = f.requests > 0 ? f.requests : INT64_MAX;
  const Clock::time_point end =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(f.duration * 1000.0f));
  std::vector<std::thread> workers;
  for (int32_t w = 0; w < f.concurrency; ++w) {
    workers.emplace_back([&, w] {
      api::LoadClient client(target);
      api::PromptBuilder prompts(words, f.seed + 1000 + static_cast<uint64_t>(w));
      while (next.fetch_add(1) < limit) {
        if (f.duration > 0.0f && Clock::now() >= end) break;
        out.add(client.send({prompts.make(n_words), f.max_tokens, f.stream, true}));
      }
    });
  }
  for (std::thread& t : workers) t.join();
}

// Poisson arrivals: each request is sent at its arrival time (capped by --concurrency).
void run_open_loop(const LoadFlags& f, const api::LoadTarget& target,
                   const std::vector<std::string>& words, int32_t n_words, Collector& out) {
  const std::vector<double> arrivals = api::poisson_arrivals(f.requests, f.rate, f.seed);
  api::PromptBuilder prompts(words, f.seed + 1);
  std::counting_semaphore<1 << 20> slots(f.concurrency > 0 ? f.concurrency : (1 << 20));
  std::vector<std::thread> requests;
  const Clock::time_point start = Clock::now();
  for (double at : arrivals) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at)));
    slots.acquire();
    requests.emplace_back([&, prompt = prompts.make(n_words)] {
      api::LoadClient client(target);
      out.add(client.send({prompt, f.max_tokens, f.stream, true}));
      slots.release();
    });
  }
  for (std::thread& t : requests) t.join();
}

}  // namespace

int cmd_loadtest(int argc, char** argv) {
  LoadFlags f;
  ArgParser args("quanta loadtest --url URL -n N (--concurrency C | --rate R) [options]",
                 "Benchmarks a running server with greedy /v1/completions requests (ignore_eos) "
                 "and prints requests/s, output tokens/s and TTFT, TPOT and end-to-end latency "
                 "at p50/p90/p99 (TTFT equals end-to-end without --stream).");
  add_flags(args, f);
  if (!args.parse(argc, argv)) return 0;
  validate(f);
  api::LoadTarget target = api::parse_url(f.url);
  target.api_key = f.api_key;
  target.model = f.model;
  const std::vector<std::string> words = prompt_words(f);

  api::LoadClient calibration(target);
  api::PromptBuilder calibration_prompts(words, f.seed);
  const int32_t n_words =
      api::calibrate_prompt_words(calibration, calibration_prompts, f.prompt_len);

  Collector samples;
  const Clock::time_point start = Clock::now();
  if (f.rate > 0.0f) {
    run_open_loop(f, target, words, n_words, samples);
  } else {
    run_closed_loop(f, target, words, n_words, samples);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const api::LoadReport report = api::summarize(samples.take(), seconds);
  if (f.json) {
    std::printf("%s\n", api::report_json(report).c_str());
  } else {
    std::printf("%s", api::report_text(report).c_str());
  }
  return 0;
}

}  // namespace quanta::cli
