// `quanta bench`: llama-bench-style throughput tests (ppN, tgN, tgN@dD, batchB) on a model
// file or on a cached random-weight model of a named shape, with the machine's memory read
// bandwidth as the decode roofline; a Markdown table or (--json) a JSON array on stdout.
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/membw.h"
#include "core/system.h"
#include "engine/bench.h"
#include "engine/bench_report.h"
#include "engine/bench_spec.h"
#include "gguf/reader.h"
#include "kernels/kernel_table.h"
#include "kv/kv_cache.h"
#include "models/model.h"
#include "models/synthetic.h"
#include "spec_flags.h"
#include "tokenizer/tokenizer.h"
#include "type_names.h"

namespace quanta::cli {
namespace {

struct BenchFlags {
  std::string model, shape, type = "q4_0", cache_dir = "build/bench-models";
  std::string n_prompt = "512", n_gen = "128", depth = "4096", batch = "1,4,16", tests;
  int32_t batch_prompt = 128, batch_gen = 128;
  int32_t repetitions = 3, n_threads = 0, bw_mib = 512;
  std::string kv_fill = "prefill", kv_type = "f16";
  std::string kv_transform = kv::key_transform_name(kv::kDefaultKeyTransform);
  float bandwidth_gbs = 0.0f;
  bool no_warmup = false, json = false, pure = false;
  uint64_t seed = 1;
  bool spec = false;  // --spec: speculative vs plain decoding (bench_spec.h)
  SpecFlags spec_flags;
  std::string draft_type, spec_prompt = "Once upon a time";
};

void add_flags(ArgParser& args, BenchFlags& f) {
  args.add_string("-m, --model", "PATH", &f.model, "GGUF model file");
  args.add_string("--shape", "NAME", &f.shape,
                  "instead of -m: random weights, tinyllama-1.1b or default");
  args.add_string("--type", "TYPE", &f.type,
                  "with --shape: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K "
                  "q5_K q6_K, or q4_K_M q5_K_M (the same as q4_K q5_K) (default q4_0)");
  args.add_flag("--pure", &f.pure,
                "with --shape: the type for every matrix (default: per-tensor types "
                "as llama-quantize picks them, e.g. output.weight Q6_K)");
  args.add_string("--cache-dir", "DIR", &f.cache_dir,
                  "where --shape models are written and reused "
                  "(default build/bench-models)");
  args.add_string("-p, --n-prompt", "LIST", &f.n_prompt,
                  "prompt sizes for ppN tests (default 512; 0 = none)");
  args.add_string("-n, --n-gen", "LIST", &f.n_gen,
                  "token counts for tgN tests (default 128; 0 = none)");
  args.add_string("-d, --depth", "LIST", &f.depth,
                  "context depths: tgN@dD for each N (default 4096; 0 = none)");
  args.add_string("-b, --batch", "LIST", &f.batch,
                  "sequence counts for batchB tests (default 1,4,16; 0 = none)");
  args.add_int("--batch-prompt", "N", &f.batch_prompt,
               "prompt tokens per sequence in batchB (default 128)");
  args.add_int("--batch-gen", "N", &f.batch_gen,
               "tokens generated per sequence in batchB (default 128)");
  args.add_string("--tests", "LIST", &f.tests,
                  "explicit tests, e.g. pp512,tg128,tg128@d4096,batch16 "
                  "(replaces -p -n -d -b)");
  args.add_int("-r, --repetitions", "N", &f.repetitions, "repetitions per test (default 3)");
  args.add_int("-t, --threads", "N", &f.n_threads, "threads (default: all cores)");
  args.add_string("--kv-fill", "HOW", &f.kv_fill,
                  "context before decode tests: prefill (run the model, "
                  "default) or random (write random K/V, no prefill time)");
  args.add_string("--kv-type", "TYPE", &f.kv_type,
                  "KV cache type: f16 (default, as llama.cpp), f32, q8_0 or q4_0");
  args.add_string("--kv-transform", "MODE", &f.kv_transform, kv::key_transform_help());
  args.add_flag("--no-warmup", &f.no_warmup, "skip the untimed warm-up pass of each test");
  args.add_float("--bandwidth", "GB/S", &f.bandwidth_gbs,
                 "memory read bandwidth for the roofline "
                 "(default: measured)");
  args.add_int("--bw-mib", "N", &f.bw_mib,
               "buffer of the bandwidth measurement in MiB (default 512)");
  args.add_flag("--json", &f.json, "print a JSON array instead of the Markdown table");
  args.add_uint64("--seed", "S", &f.seed, "seed of the random tokens and K/V (default 1)");
  args.add_flag("--spec", &f.spec,
                "speculative decoding benchmark: greedy decode of --spec-prompt with and "
                "without speculation (first -n count, default 128); needs --draft-model, "
                "--draft-type or --lookup-ngram");
  args.add_string("--spec-prompt", "TEXT", &f.spec_prompt,
                  "with --spec: the prompt (default \"Once upon a time\")");
  args.add_string("--draft-type", "TYPE", &f.draft_type,
                  "with --spec --shape: the draft is the same random weights in TYPE "
                  "(a quantized self-draft)");
  add_spec_flags(args, f.spec_flags);
}

std::vector<int32_t> parse_list(const std::string& text, const char* flag) {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > 1000000) {
      fail("%s: '%s' is not a comma-separated list of counts", flag, text.c_str());
    }
    if (v > 0) out.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return out;
}

std::vector<bench::BenchTest> build_tests(const BenchFlags& f) {
  if (f.batch_prompt < 0 || f.batch_gen < 1)
    fail("--batch-prompt must be >= 0 and --batch-gen >= 1");
  std::vector<bench::BenchTest> tests;
  if (!f.tests.empty()) {
    size_t pos = 0;
    while (pos <= f.tests.size()) {
      const size_t comma = std::min(f.tests.find(',', pos), f.tests.size());
      tests.push_back(
          bench::parse_test(f.tests.substr(pos, comma - pos), f.batch_prompt, f.batch_gen));
      pos = comma + 1;
    }
    return tests;
  }
  for (int32_t n : parse_list(f.n_prompt, "--n-prompt")) tests.push_back(bench::prompt_test(n));
  const std::vector<int32_t> gens = parse_list(f.n_gen, "--n-gen");
  for (int32_t n : gens) tests.push_back(bench::decode_test(n));
  for (int32_t d : parse_list(f.depth, "--depth")) {
    for (int32_t n : gens) tests.push_back(bench::decode_test(n, d));
  }
  for (int32_t b : parse_list(f.batch, "--batch")) {
    tests.push_back(bench::batched_test(b, f.batch_prompt, f.batch_gen));
  }
  if (tests.empty()) fail("no tests selected");
  return tests;
}

// Per-tensor types of a --shape model: as llama-quantize picks them for the type (q4_K and
// q4_K_M alike mean Q4_K_M), or one type everywhere with --pure.
struct TypeChoice {
  GgmlType type;
  bool llama_mix;
  std::string label;  // "Q4_K_M", "Q4_0", "Q4_0 pure"
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TypeChoice parse_type_choice(const std::string& name, bool pure) {
  const bool m = name.size() > 2 && strcasecmp(name.c_str() + name.size() - 2, "_m") == 0;
  const GgmlType type = parse_weight_type(m ? name.substr(0, name.size() - 2) : name);
  const bool k_m = type == GgmlType::Q4_K || type == GgmlType::Q5_K;
  if (m && !k_m) fail("--type %s: the _M mix exists for q4_K and q5_K only", name.c_str());
  if (m && pure) fail("--type %s is a mix; --pure asks for one type", name.c_str());
  const bool quantized = type_traits(type).block_size > 1;
  std::string label = upper(type_name(type));
  if (!pure && k_m) label += "_M";
  if (pure && quantized) label += " pure";
  return TypeChoice{type, !pure, label};
}

// True when `path` holds a synthetic model written from `spec` (same shape and types).
bool matches_spec(const std::string& path, const models::SyntheticSpec& spec) {
  try {
    const gguf::File f = gguf::File::open(path);
    if (!f.get_bool("quanta.synthetic").value_or(false)) return false;
    const models::HParams hp = models::read_hparams(f);
    if (hp.n_layer != spec.n_layer || hp.n_embd != spec.n_embd || hp.n_ff != spec.n_ff ||
        hp.n_head != spec.n_head || hp.n_head_kv != spec.n_head_kv) {
      return false;
    }
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (t.ne.size() >= 2 && t.type != models::synthetic_tensor_type(spec, t.name)) return false;
      if (t.name == "token_embd.weight" && spec.n_vocab > 0 && t.ne[1] != spec.n_vocab)
        return false;
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Path of the cached random-weight model for --shape/--type, written on first use.
std::string cached_model(const BenchFlags& f, const TypeChoice& type) {
  models::SyntheticSpec spec = models::synthetic_preset(f.shape);
  spec.type = type.type;
  spec.llama_mix = type.llama_mix;
  std::filesystem::create_directories(f.cache_dir);
  std::string label = type.label;
  std::replace(label.begin(), label.end(), ' ', '-');
  const std::string path = f.cache_dir + "/" + f.shape + "-" + label + ".gguf";
  if (std::filesystem::exists(path) && matches_spec(path, spec)) return path;
  std::fprintf(stderr, "bench: writing %s (random weights, %s; reused on later runs)...\n",
               path.c_str(), type.label.c_str());
  const double t0 = now_seconds();
  models::write_synthetic_model(spec, path);
  std::fprintf(stderr, "bench: wrote %s in %.1f s\n", path.c_str(), now_seconds() - t0);
  return path;
}

// llama.cpp's general.file_type names (llama_ftype) for the common types.
const char* ftype_name(int64_t ftype) {
  switch (ftype) {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 7:
      return "Q8_0";
    case 8:
      return "Q5_0";
    case 9:
      return "Q5_1";
    case 14:
      return "Q4_K_S";
    case 15:
      return "Q4_K_M";
    case 16:
      return "Q5_K_S";
    case 17:
      return "Q5_K_M";
    case 18:
      return "Q6_K";
    case 32:
      return "BF16";
    default:
      return nullptr;
  }
}

// general.file_type when the file names one, else the type holding most bytes of the 2-D
// tensors, with " mix" when there are several.
std::string type_label_of(const models::Model& model) {
  const std::optional<int64_t> ftype = model.file().get_int("general.file_type");
  if (ftype && ftype_name(*ftype) != nullptr) return ftype_name(*ftype);
  std::map<GgmlType, uint64_t> bytes;
  for (const gguf::TensorInfo& t : model.file().tensors()) {
    if (t.ne.size() >= 2) bytes[t.type] += t.n_bytes;
  }
  GgmlType best = GgmlType::F32;
  uint64_t most = 0;
  for (const auto& [type, n] : bytes) {
    if (n > most) best = type, most = n;
  }
  return upper(type_name(best)) + (bytes.size() > 1 ? " mix" : "");
}

// Progress on stderr: a self-updating line on a terminal (at most 4 updates a second, erased
// when a test ends), else one line per finished phase.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(int32_t repetitions) : repetitions_(repetitions), tty_(isatty(2) != 0) {}
  ~ProgressPrinter() { finish(); }

  void operator()(const bench::Progress& p) {
    const bool done = p.done == p.total;
    const double now = now_seconds();
    if (tty_ && !done && now - last_ < 0.25) return;
    if (!tty_ && !done) return;
    last_ = now;
    std::string phase = p.phase;
    if (phase == "run") phase = strformat("run %d/%d", p.repetition + 1, repetitions_);
    std::fprintf(stderr, "%sbench: %-12s %-10s %6d/%-6d tokens%s", tty_ ? "\r" : "",
                 p.test->name().c_str(), phase.c_str(), p.done, p.total, tty_ ? "   " : "\n");
    open_line_ = tty_;
  }
  // Erases the self-updating line (the results go to stdout, often the same terminal).
  void finish() {
    if (open_line_) std::fprintf(stderr, "\r\033[K");
    open_line_ = false;
  }

 private:
  int32_t repetitions_;
  bool tty_;
  bool open_line_ = false;
  double last_ = 0.0;
};

// The model of -m or --shape (written first if need be), described in `info`.
std::unique_ptr<models::Model> load_model(const BenchFlags& f, bench::ReportInfo& info) {
  std::string path = f.model;
  if (!f.shape.empty()) {
    const TypeChoice type = parse_type_choice(f.type, f.pure);
    path = cached_model(f, type);
    info.model = f.shape;
    info.type = type.label;
  }
  auto model = models::Model::load(path);
  if (info.model.empty()) {
    info.model = std::filesystem::path(path).filename().string();
    info.type = type_label_of(*model);
  }
  info.size_bytes = model->weight_bytes();
  info.n_params = model->n_params();
  info.repetitions = f.repetitions;
  info.kv_fill = f.kv_fill;
  info.kv_type = f.kv_type;
  info.isa = kernels::active().isa;
  return model;
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void measure_bandwidth(const BenchFlags& f, int32_t n_threads, bench::ReportInfo& info) {
  if (f.bandwidth_gbs > 0) {
    info.bandwidth = f.bandwidth_gbs * 1e9;
    return;
  }
  if (f.bw_mib < 1) fail("--bw-mib must be >= 1");
  BandwidthOptions o;
  o.buffer_bytes = static_cast<size_t>(f.bw_mib) << 20;
  std::fprintf(stderr, "bench: measuring memory read bandwidth (%d MiB buffer)...\n", f.bw_mib);
  o.n_threads = 1;
  const BandwidthResult one = measure_read_bandwidth(o);
  info.bandwidth_1t = one.bytes_per_s;
  info.bandwidth = info.bandwidth_1t;
  info.bandwidth_disturbed = one.clean_passes == 0;
  if (n_threads > 1) {
    // More readers never lower the true bandwidth; a lower figure is interference from
    // other processes, so the roofline takes the higher one.
    o.n_threads = n_threads;
    const BandwidthResult many = measure_read_bandwidth(o);
    info.bandwidth_nt = many.bytes_per_s;
    info.bandwidth_threads = n_threads;
    info.bandwidth = std::max(info.bandwidth_1t, info.bandwidth_nt);
    info.bandwidth_disturbed = info.bandwidth_disturbed || many.clean_passes == 0;
  }
  if (info.bandwidth_disturbed) {
    std::fprintf(stderr,
                 "bench: warning: other processes took the CPU during every pass of the "
                 "bandwidth measurement; it understates this machine\n");
  }
}

// `quanta bench --spec`: the target of -m/--shape against its draft, one Markdown table.
int run_spec_bench(const BenchFlags& f, const ArgParser& args) {
  if (f.model.empty() == f.shape.empty()) fail("give either --model or --shape");
  if (f.n_threads < 0) fail("--threads must be >= 0");
  std::string draft_path = f.spec_flags.draft_model;
  if (!f.draft_type.empty()) {
    if (f.shape.empty() || f.spec_flags.active()) {
      fail("--draft-type goes with --shape, instead of --draft-model and --lookup-ngram");
    }
    draft_path = cached_model(f, parse_type_choice(f.draft_type, f.pure));
  }
  SpecFlags checked = f.spec_flags;
  if (!f.draft_type.empty()) checked.draft_model = draft_path;
  if (!checked.active()) {
    fail("--spec needs --draft-model, --draft-type, --draft-quant or --lookup-ngram");
  }
  if (!f.spec_flags.draft_quant.empty() && f.model.empty()) fail("--draft-quant goes with -m");
  validate(checked, args);
  bench::ReportInfo info;
  const auto model = load_model(f, info);
  const auto draft = draft_path.empty() ? load_draft_model(f.spec_flags, f.model)
                                        : models::Model::load(draft_path);
  bench::SpecBenchOptions o;
  o.prompt = tokenizer::Tokenizer::from_gguf(model->file()).encode(f.spec_prompt, true);
  const std::vector<int32_t> gens = parse_list(f.n_gen, "--n-gen");
  o.n_gen = gens.empty() ? 128 : gens[0];
  o.spec = f.spec_flags.options();
  o.lookup_ngram = f.spec_flags.lookup_ngram;
  o.repetitions = f.repetitions;
  o.n_threads = f.n_threads;
  o.kv_type = kv::parse_kv_type(f.kv_type);
  o.kv_transform = kv::parse_key_transform(f.kv_transform);
  o.on_progress = [&](const char* phase, int32_t rep) {
    std::fprintf(stderr, "bench: spec %-12s %d/%d\n", phase, rep + 1, f.repetitions);
  };
  const bench::SpecBenchResult r = bench::run_spec_bench(*model, draft.get(), o);
  std::string label = info.model + " " + info.type;
  if (draft) {
    label += " / draft ";
    if (!f.draft_type.empty()) {
      label += upper(f.draft_type);
    } else if (!f.spec_flags.draft_quant.empty()) {
      label += upper(f.spec_flags.draft_quant);
    } else {
      label += std::filesystem::path(draft_path).filename().string();
    }
  }
  print(bench::spec_markdown(label, r));
  if (!r.identical) {
    std::fprintf(stderr, "bench: error: the speculative output differs from the plain one\n");
    return 1;
  }
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  BenchFlags f;
  ArgParser args(
      "quanta bench (-m MODEL | --shape NAME [--type T]) [options]",
      "Measures prompt processing (ppN), decode (tgN, tgN@dD at context depth D) and "
      "batched decode of B sequences (batchB) in tokens/s, with each decode figure as a "
      "percentage of the memory-bandwidth roofline. Results on stdout, progress on stderr.");
  add_flags(args, f);
  if (!args.parse(argc, argv)) return 0;
  if (f.model.empty() == f.shape.empty()) fail("give either --model or --shape");
  if (f.spec) return run_spec_bench(f, args);
  if (f.spec_flags.active() || !f.draft_type.empty() || args.was_set("--spec-prompt")) {
    fail("--draft-model, --draft-type, --draft-quant, --lookup-ngram and --spec-prompt go with "
         "--spec");
  }
  if (!f.model.empty() && (args.was_set("--type") || f.pure)) {
    fail("--type and --pure go with --shape, not --model");
  }
  if (f.repetitions < 1) fail("--repetitions must be >= 1");
  if (f.n_threads < 0) fail("--threads must be >= 0");
  if (f.kv_fill != "prefill" && f.kv_fill != "random") fail("--kv-fill must be prefill or random");
  const GgmlType kv_type = kv::parse_kv_type(f.kv_type);
  const std::vector<bench::BenchTest> tests = build_tests(f);

  bench::ReportInfo info;
  const auto model = load_model(f, info);
  const int32_t n_threads = f.n_threads > 0 ? f.n_threads : hardware_threads();
  measure_bandwidth(f, n_threads, info);

  bench::BenchOptions o;
  o.repetitions = f.repetitions;
  o.n_threads = n_threads;
  o.kv_fill = f.kv_fill == "random" ? bench::KvFill::kRandom : bench::KvFill::kPrefill;
  o.kv_type = kv_type;
  o.kv_transform = kv::parse_key_transform(f.kv_transform);
  o.warmup = !f.no_warmup;
  o.bandwidth = info.bandwidth;
  o.seed = f.seed;
  ProgressPrinter progress(f.repetitions);
  o.on_progress = [&](const bench::Progress& p) { progress(p); };
  // Markdown rows appear as tests finish (as llama-bench prints them); JSON at the end.
  if (!f.json) print(bench::markdown_header());
  std::vector<bench::BenchResult> results;
  for (const bench::BenchTest& t : tests) {
    results.push_back(bench::run_test(*model, t, o));
    progress.finish();
    if (!f.json) print(bench::markdown_row(info, results.back()));
  }
  print(f.json ? bench::json_report(info, results) : bench::markdown_notes(info));
  return 0;
}

}  // namespace quanta::cli
