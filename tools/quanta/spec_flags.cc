// Speculative-decoding flags: parsing, validation, drafter construction, statistics.
#include "spec_flags.h"

#include <cstdio>

#include "core/error.h"
#include "engine/ngram.h"

namespace quanta::cli {

void add_spec_flags(ArgParser& args, SpecFlags& f) {
  args.add_string("--draft-model", "PATH", &f.draft_model,
                  "speculative decoding with this draft model (same vocabulary; e.g. the "
                  "target quantized smaller with `quanta quantize`)");
  args.add_int("--lookup-ngram", "N", &f.lookup_ngram,
               "speculative decoding by prompt lookup: propose what followed the last N "
               "tokens earlier in the prompt or output");
  args.add_int("--draft-max", "K", &f.draft_max, "most draft tokens per target pass (default 8)");
  args.add_int("--draft-min", "K", &f.draft_min,
               "least draft tokens per pass; the length adapts in [min, max] to the measured "
               "acceptance (default 1; = --draft-max for a fixed length)");
}

void validate(const SpecFlags& f, const ArgParser& args) {
  if (!f.draft_model.empty() && f.lookup_ngram > 0) {
    fail("--draft-model and --lookup-ngram are alternatives: give one");
  }
  if (args.was_set("--lookup-ngram") && f.lookup_ngram < 1) fail("--lookup-ngram must be >= 1");
  if (!f.active() && (args.was_set("--draft-max") || args.was_set("--draft-min"))) {
    fail("--draft-max and --draft-min need --draft-model or --lookup-ngram");
  }
  if (f.draft_max < 1 || f.draft_max > 64) fail("--draft-max must be in [1, 64]");
  if (f.draft_min < 1 || f.draft_min > f.draft_max) {
    fail("--draft-min must be in [1, --draft-max] (got %d)", f.draft_min);
  }
}

SpecDraft make_draft(const SpecFlags& f, const models::Context& target,
                     const SamplingParams& sampling) {
  SpecDraft d;
  if (f.lookup_ngram > 0) {
    d.drafter = std::make_unique<NgramDrafter>(f.lookup_ngram);
    return d;
  }
  d.model = models::Model::load(f.draft_model);
  models::ContextOptions o = target.options();
  o.n_outputs = 1;
  d.ctx = std::make_unique<models::Context>(*d.model, o);
  d.drafter = std::make_unique<ModelDrafter>(*d.ctx, target.n_vocab(), sampling);
  return d;
}

void print_spec_stats(const SpecFlags& f, const SpecStats& st) {
  std::fprintf(stderr, "speculative:         %s, draft length %d..%d\n",
               f.lookup_ngram > 0 ? strformat("lookup %d-gram", f.lookup_ngram).c_str()
                                  : f.draft_model.c_str(),
               f.draft_min, f.draft_max);
  std::fprintf(stderr, "drafted:             %5d tokens, %5d accepted (%.1f%%)\n", st.n_drafted,
               st.n_accepted, 100.0 * st.acceptance());
  std::fprintf(stderr, "target passes:       %5d, %.2f tokens per pass\n", st.n_passes,
               st.tokens_per_pass());
  std::fprintf(stderr, "draft / verify time: %8.1f ms / %8.1f ms\n", st.draft_seconds * 1e3,
               st.verify_seconds * 1e3);
}

}  // namespace quanta::cli
