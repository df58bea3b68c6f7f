// `quanta perplexity`: perplexity of a model over a text file with llama-perplexity's
// protocol, and with --kl-base the KL divergence, same-top rate etc. against a base model on
// the same windows. Progress on stderr; the report (or one JSON object) on stdout.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/system.h"
#include "engine/perplexity.h"
#include "kv/kv_cache.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace quanta::cli {
namespace {

struct PerplexityFlags {
  std::string model, file, base, kv_type = "f32", base_kv_type = "f32";
  std::string kv_transform = kv::key_transform_name(kv::kDefaultKeyTransform);
  int32_t n_ctx = 512;
  int32_t n_chunks = 0;
  int32_t n_threads = 0;
  int32_t batch = 512;
  bool json = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open text file '%s'", path.c_str());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("cannot read text file '%s'", path.c_str());
  return text.str();
}

// "[=====>    ] 12/318 windows, PPL 6.1234" redrawn in place on a terminal; only the final
// line otherwise.
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(2) != 0) {}
  void operator()(int32_t done, int32_t total, double ppl) {
    const bool last = done == total;
    const double now = now_seconds();
    if (!last && (!tty_ || now - shown_ < 0.1)) return;
    shown_ = now;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(static_cast<int64_t>(kWidth) * done / total);
    std::string bar(kWidth, ' ');
    for (int i = 0; i < filled; ++i) bar[i] = '=';
    if (filled < kWidth) bar[filled] = '>';
    std::fprintf(stderr, "%s[%s] %d/%d windows, PPL %.4f%s", tty_ ? "\r" : "", bar.c_str(), done,
                 total, ppl, last ? "\n" : "");
  }

 private:
  bool tty_;
  double shown_ = 0.0;
};

}  // namespace

int cmd_perplexity(int argc, char** argv) {
  PerplexityFlags f;
  ArgParser args("quanta perplexity -m MODEL -f TEXT [--ctx N] [--kl-base BASE] [options]",
                 "Perplexity over non-overlapping windows of TEXT (each window starts with BOS; "
                 "its second half is scored), exactly as llama-perplexity; with --kl-base also "
                 "KL(base || model), its percentiles and the same-top-token rate.");
  args.add_string("-m, --model", "PATH", &f.model, "GGUF model file");
  args.add_string("-f, --file", "PATH", &f.file, "text file to score");
  args.add_int("-c, --ctx", "N", &f.n_ctx, "window length in tokens (default 512)");
  args.add_string("--kl-base", "PATH", &f.base,
                  "base model (e.g. the unquantized one) for KL divergence and same-top rate");
  args.add_string("--kv-type", "TYPE", &f.kv_type,
                  "the model's KV cache type: f32, f16, q8_0 or q4_0 (default f32)");
  args.add_string("--base-kv-type", "TYPE", &f.base_kv_type,
                  "the base model's KV cache type (default f32)");
  args.add_string("--kv-transform", "MODE", &f.kv_transform,
                  kv::key_transform_help());
  args.add_int("--chunks", "N", &f.n_chunks, "evaluate only the first N windows (default all)");
  args.add_int("-t, --threads", "N", &f.n_threads, "threads (default: all cores)");
  args.add_int("-b, --batch", "N", &f.batch,
               "tokens per forward pass: several windows at once (default 512)");
  args.add_flag("--json", &f.json, "print one JSON object instead of the text report");
  args.require("--model");
  args.require("--file");
  if (!args.parse(argc, argv)) return 0;
  if (f.n_ctx < 4) fail("--ctx must be at least 4");
  if (f.n_chunks < 0) fail("--chunks must be >= 0");
  if (f.n_threads < 0) fail("--threads must be >= 0");
  if (f.batch < 1) fail("--batch must be >= 1");
  if (args.was_set("--base-kv-type") && f.base.empty()) fail("--base-kv-type needs --kl-base");

  ppl::PerplexityOptions o;
  o.n_ctx = f.n_ctx;
  o.max_chunks = f.n_chunks;
  o.n_threads = f.n_threads;
  o.batch_tokens = f.batch;
  o.kv_type = kv::parse_kv_type(f.kv_type);
  o.base_kv_type = kv::parse_kv_type(f.base_kv_type, "--base-kv-type");
  o.kv_transform = kv::parse_key_transform(f.kv_transform);
  const std::string text = read_text(f.file);
  const auto model = models::Model::load(f.model);
  std::unique_ptr<models::Model> base;
  if (!f.base.empty()) base = models::Model::load(f.base);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(model->file());
  if (tok.add_bos()) o.bos = tok.bos();
  const double t0 = now_seconds();
  const std::vector<int32_t> tokens = ppl::tokenize_for_perplexity(tok, text);
  int64_t n_windows = static_cast<int64_t>(tokens.size()) / f.n_ctx;
  if (f.n_chunks > 0) n_windows = std::min<int64_t>(n_windows, f.n_chunks);
  std::fprintf(stderr, "perplexity: %zu tokens (tokenized in %.2f s), %lld windows of %d\n",
               tokens.size(), now_seconds() - t0, static_cast<long long>(n_windows), f.n_ctx);
  ProgressBar bar;
  const ppl::PerplexityResult r =
      ppl::evaluate_perplexity(*model, tokens, o, base.get(),
                               [&](int32_t done, int32_t total, double p) { bar(done, total, p); });
  const std::string out = f.json ? ppl::perplexity_json(r) + "\n" : ppl::perplexity_report(r);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace quanta::cli
