// Speculative-decoding flags: parsing, validation, drafter construction, statistics.
#include "spec_flags.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "compress/quantize.h"
#include "core/error.h"
#include "core/system.h"
#include "engine/ngram.h"

namespace quanta::cli {

void add_spec_flags(ArgParser& args, SpecFlags& f) {
  args.add_string("--draft-model", "PATH", &f.draft_model,
                  "speculative decoding with this draft model (same vocabulary; e.g. the "
                  "target quantized smaller with `quanta quantize`)");
  args.add_string("--draft-quant", "TYPE", &f.draft_quant,
                  "speculative decoding with the target itself quantized to TYPE (e.g. Q4_0; "
                  "see quanta quantize) at load as the draft; the target must be F32/F16/BF16");
  args.add_int("--lookup-ngram", "N", &f.lookup_ngram,
               "speculative decoding by prompt lookup: propose what followed the last N "
               "tokens earlier in the prompt or output");
  args.add_int("--draft-max", "K", &f.draft_max, "most draft tokens per target pass (default 8)");
  args.add_int("--draft-min", "K", &f.draft_min,
               "least draft tokens per pass; the length adapts in [min, max] to the measured "
               "acceptance (default 1; = --draft-max for a fixed length)");
}

void validate(const SpecFlags& f, const ArgParser& args) {
  const int n_drafters = !f.draft_model.empty() + !f.draft_quant.empty() + (f.lookup_ngram > 0);
  if (n_drafters > 1)
    fail("--draft-model, --draft-quant and --lookup-ngram are alternatives: give one");
  if (args.was_set("--lookup-ngram") && f.lookup_ngram < 1) fail("--lookup-ngram must be >= 1");
  if (!f.active() && (args.was_set("--draft-max") || args.was_set("--draft-min"))) {
    fail("--draft-max and --draft-min need --draft-model, --draft-quant or --lookup-ngram");
  }
  if (f.draft_max < 1 || f.draft_max > 64) fail("--draft-max must be in [1, 64]");
  if (f.draft_min < 1 || f.draft_min > f.draft_max) {
    fail("--draft-min must be in [1, --draft-max] (got %d)", f.draft_min);
  }
}

std::unique_ptr<models::Model> load_draft_model(const SpecFlags& f,
                                                const std::string& target_path) {
  if (!f.draft_model.empty()) return models::Model::load(f.draft_model);
  if (f.draft_quant.empty()) return nullptr;
  compress::QuantizeOptions o;
  o.ftype = compress::parse_file_type(f.draft_quant);
  const std::string path = (std::filesystem::temp_directory_path() /
                            strformat("quanta-draft-%d.gguf", static_cast<int>(getpid())))
                               .string();
  const double t0 = now_seconds();
  try {
    compress::quantize_model(target_path, path, o);
    auto model = models::Model::load(path);
    std::filesystem::remove(path);  // the mapping keeps the data
    std::fprintf(stderr, "draft: the target quantized to %s in %.1f s\n", f.draft_quant.c_str(),
                 now_seconds() - t0);
    return model;
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    throw;
  }
}

SpecDraft make_draft(const SpecFlags& f, const std::string& target_path,
                     const models::Context& target, const SamplingParams& sampling) {
  SpecDraft d;
  if (f.lookup_ngram > 0) {
    d.drafter = std::make_unique<NgramDrafter>(f.lookup_ngram);
    return d;
  }
  d.model = load_draft_model(f, target_path);
  models::ContextOptions o = target.options();  // its pool too: the draft runs on it in turn
  o.n_outputs = 1;
  d.ctx = std::make_unique<models::Context>(*d.model, o);
  d.drafter = std::make_unique<ModelDrafter>(*d.ctx, target.n_vocab(), sampling);
  return d;
}

void print_spec_stats(const SpecFlags& f, const SpecStats& st) {
  std::fprintf(stderr, "speculative:         %s, draft length %d..%d\n",
               f.lookup_ngram > 0      ? strformat("lookup %d-gram", f.lookup_ngram).c_str()
               : f.draft_quant.empty() ? f.draft_model.c_str()
                                       : ("target quantized to " + f.draft_quant).c_str(),
               f.draft_min, f.draft_max);
  std::fprintf(stderr, "drafted:             %5d tokens, %5d accepted (%.1f%%)\n", st.n_drafted,
               st.n_accepted, 100.0 * st.acceptance());
  std::fprintf(stderr, "target passes:       %5d, %.2f tokens per pass\n", st.n_passes,
               st.tokens_per_pass());
  std::fprintf(stderr, "draft / verify time: %8.1f ms / %8.1f ms\n", st.draft_seconds * 1e3,
               st.verify_seconds * 1e3);
}

}  // namespace quanta::cli
