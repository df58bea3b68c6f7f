// Speculative-decoding flags shared by `quanta run` and `quanta bench --spec`: a draft model
// (--draft-model) or prompt lookup (--lookup-ngram), the draft length bounds, and the
// Drafter they describe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "args.h"
#include "engine/speculative.h"
#include "models/context.h"
#include "models/model.h"

namespace quanta::cli {

struct SpecFlags {
  std::string draft_model;
  std::string draft_quant;  // quantize the target to this type at load to make the draft
  int32_t draft_max = 8;
  int32_t draft_min = 1;
  int32_t lookup_ngram = 0;

  bool active() const { return !draft_model.empty() || !draft_quant.empty() || lookup_ngram > 0; }
  SpecOptions options() const { return SpecOptions{draft_max, draft_min}; }
};

void add_spec_flags(ArgParser& args, SpecFlags& f);
// Throws quanta::Error for inconsistent values (both drafters, bounds out of range).
void validate(const SpecFlags& f, const ArgParser& args);

// The draft model of --draft-model, or with --draft-quant the target (target_path) quantized
// into a temporary file, loaded (mapped) and unlinked; null for n-gram lookup.
std::unique_ptr<models::Model> load_draft_model(const SpecFlags& f, const std::string& target_path);

// The draft model (if any), its context and the Drafter, built from the flags.
struct SpecDraft {
  std::unique_ptr<models::Model> model;
  std::unique_ptr<models::Context> ctx;
  std::unique_ptr<Drafter> drafter;
};
// `target` gives the vocabulary and context options, its thread pool included (the draft
// context runs on it: `target` must outlive the result); `sampling` the draft sampler's.
SpecDraft make_draft(const SpecFlags& f, const std::string& target_path,
                     const models::Context& target, const SamplingParams& sampling);

// Acceptance statistics on stderr, after the usual timings.
void print_spec_stats(const SpecFlags& f, const SpecStats& st);

}  // namespace quanta::cli
