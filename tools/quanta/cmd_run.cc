// `quanta run`: streams the continuation of a prompt to stdout (only that, so it can be
// piped), then prints load time, model size, prompt and generation speed and time to first
// token to stderr.
#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/system.h"
#include "engine/generator.h"
#include "engine/sampler.h"
#include "format.h"
#include "kv/kv_cache.h"
#include "models/context.h"
#include "models/model.h"
#include "spec_flags.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8_stream.h"

namespace quanta::cli {
namespace {

struct RunFlags {
  std::string model, prompt;
  int32_t n_predict = 128;
  int32_t n_threads = 0;
  int32_t n_ctx = 0;
  std::string kv_type = "f32";
  std::string kv_transform = kv::key_transform_name(kv::kDefaultKeyTransform);
  bool ids = false;
  bool ignore_eos = false;
  SamplingParams sampling;
  SpecFlags spec;
};

void add_sampling_flags(ArgParser& args, SamplingParams& s) {
  args.add_float("--temp", "T", &s.temperature, "temperature; 0 = greedy (default 0.8)");
  args.add_int("--top-k", "K", &s.top_k, "keep the K most likely tokens; 0 = off (default 40)");
  args.add_float("--top-p", "P", &s.top_p, "nucleus sampling; 1 = off (default 0.95)");
  args.add_float("--min-p", "P", &s.min_p, "drop tokens below P x the top probability (default 0.05)");
  args.add_float("--repeat-penalty", "X", &s.repeat_penalty, "repetition penalty; 1 = off (default 1)");
  args.add_int("--repeat-last-n", "N", &s.repeat_last_n, "tokens the penalties look back (default 64)");
  args.add_float("--frequency-penalty", "X", &s.frequency_penalty, "subtract X per occurrence (default 0)");
  args.add_float("--presence-penalty", "X", &s.presence_penalty, "subtract X if present (default 0)");
  args.add_uint64("--seed", "S", &s.seed, "random seed; same seed, same output (default 4294967295)");
}

void print_stats(const models::Model& model, double load_s, const GenerateStats& st) {
  const double pp = st.prompt_seconds > 0 ? st.n_prompt / st.prompt_seconds : 0.0;
  const double tg = st.decode_seconds > 0 ? (st.n_generated - 1) / st.decode_seconds : 0.0;
  std::fprintf(stderr, "\n\n");
  std::fprintf(stderr, "load time:           %8.1f ms\n", load_s * 1e3);
  std::fprintf(stderr, "model size:          %s (%s parameters)\n",
               human_bytes(model.weight_bytes()).c_str(), human_count(model.n_params()).c_str());
  std::fprintf(stderr, "prompt:              %5d tokens, %8.1f tokens/s\n", st.n_prompt, pp);
  std::fprintf(stderr, "generation:          %5d tokens, %8.1f tokens/s\n", st.n_generated, tg);
  std::fprintf(stderr, "time to first token: %8.1f ms\n", st.ttft_seconds * 1e3);
}

}  // namespace

int cmd_run(int argc, char** argv) {
  RunFlags f;
  ArgParser args("quanta run -m MODEL -p PROMPT [-n N] [options]",
                 "Generates a continuation of PROMPT and streams it (not the prompt) to stdout; "
                 "statistics go to stderr.");
  args.add_string("-m, --model", "PATH", &f.model, "GGUF model file");
  args.add_string("-p, --prompt", "TEXT", &f.prompt, "prompt text");
  args.add_int("-n, --n-predict", "N", &f.n_predict, "tokens to generate (default 128)");
  args.add_int("-t, --threads", "N", &f.n_threads, "threads (default: all cores)");
  args.add_int("-c, --ctx", "N", &f.n_ctx, "context length (default: min(model's, 4096))");
  args.add_string("--kv-type", "TYPE", &f.kv_type,
                  "KV cache type: f32, f16, q8_0 or q4_0 (default f32)");
  args.add_string("--kv-transform", "MODE", &f.kv_transform, kv::key_transform_help());
  args.add_flag("--ids", &f.ids, "print generated token ids (space-separated) instead of text");
  args.add_flag("--ignore-eos", &f.ignore_eos, "keep generating after end-of-generation tokens");
  add_sampling_flags(args, f.sampling);
  add_spec_flags(args, f.spec);
  args.require("--model");
  args.require("--prompt");
  if (!args.parse(argc, argv)) return 0;
  if (f.n_predict < 0) fail("--n-predict must be >= 0");
  if (f.n_threads < 0) fail("--threads must be >= 0");
  if (f.n_ctx < 0) fail("--ctx must be >= 0");
  validate(f.sampling);
  validate(f.spec, args);

  const double t0 = now_seconds();
  const auto model = models::Model::load(f.model);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(model->file());
  models::ContextOptions opts;
  opts.n_ctx = f.n_ctx;
  opts.n_threads = f.n_threads;
  opts.n_outputs = f.spec.active() ? f.spec.draft_max + 1 : 1;
  opts.kv_type = kv::parse_kv_type(f.kv_type);
  opts.kv_transform = kv::parse_key_transform(f.kv_transform);
  models::Context ctx(*model, opts);
  const double load_s = now_seconds() - t0;
  if (model->file().get_bool("quanta.synthetic").value_or(false)) {
    std::fprintf(stderr, "note: %s has random weights (quanta synth): its text is meaningless\n",
                 f.model.c_str());
  }

  const std::vector<int32_t> prompt = tok.encode(f.prompt, /*add_special=*/true);
  if (prompt.empty()) fail("the prompt is empty after tokenization");
  if (static_cast<int32_t>(prompt.size()) >= ctx.n_ctx()) {
    fail("the prompt has %zu tokens; the context holds %d (use --ctx)", prompt.size(), ctx.n_ctx());
  }
  Generator gen(ctx);
  Sampler sampler(ctx.n_vocab(), f.sampling);
  tokenizer::Utf8Stream utf8;
  std::string piece, text;
  bool first = true;
  const auto on_token = [&](int32_t id) {
    if (f.ids) {
      std::printf(first ? "%d" : " %d", id);
    } else {
      piece.clear();
      tok.token_to_piece(id, piece);
      text.clear();
      utf8.push(piece, text);
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
    first = false;
    std::fflush(stdout);
    return true;
  };
  const auto is_eog = [&](int32_t id) { return !f.ignore_eos && tok.is_eog(id); };
  SpecStats spec_stats;
  if (f.spec.active()) {
    SpecDraft draft = make_draft(f.spec, f.model, ctx, f.sampling);
    SpeculativeGenerator spec_gen(ctx, *draft.drafter, f.spec.options());
    spec_stats = spec_gen.generate(prompt, f.n_predict, sampler, on_token, is_eog);
  } else {
    static_cast<GenerateStats&>(spec_stats) =
        gen.generate(prompt, f.n_predict, sampler, on_token, is_eog);
  }
  const GenerateStats& stats = spec_stats;
  text.clear();
  utf8.flush(text);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (f.ids) std::printf("\n");
  std::fflush(stdout);
  print_stats(*model, load_s, stats);
  if (f.spec.active()) print_spec_stats(f.spec, spec_stats);
  return 0;
}

}  // namespace quanta::cli
