// `quanta quantize IN.gguf OUT.gguf TYPE`: weight quantization by llama.cpp's recipe,
// optionally calibrated with an importance matrix (--imatrix), with a progress bar.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "compress/file_type.h"
#include "compress/quantize.h"
#include "core/error.h"
#include "core/system.h"
#include "format.h"

namespace quanta::cli {
namespace {

// Splits argv[2..] into positional arguments and the options ArgParser reads.
void split_positionals(int argc, char** argv, std::vector<std::string>* positional,
                       std::vector<char*>* options) {
  static const char* const kTakesValue[] = {"--imatrix", "-t", "--threads"};
  options->push_back(argv[0]);
  options->push_back(argv[1]);
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.size() > 1 && a[0] == '-') {
      options->push_back(argv[i]);
      for (const char* v : kTakesValue) {
        if (a == v && i + 1 < argc) options->push_back(argv[++i]);
      }
    } else {
      positional->push_back(a);
    }
  }
}

void draw_progress(size_t done, size_t total, const std::string& name) {
  static const bool tty = isatty(STDERR_FILENO) != 0;
  if (!tty) return;
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::fprintf(stderr, "\r[%.*s%*s] %3zu/%zu %-40.40s", filled,
               "##############################", kWidth - filled, "", done, total, name.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

std::string type_list() {
  std::string s;
  for (const compress::FileTypeInfo& t : compress::file_types()) {
    s += strformat("  %-7s %s\n", t.name, t.description);
  }
  return s + "  Q4_K, Q5_K: aliases of Q4_K_M and Q5_K_M (as llama-quantize)\n";
}

void print_summary(const compress::QuantizeReport& r, const std::string& out, double seconds,
                   bool verbose) {
  std::map<std::string, int> counts;
  for (const compress::TensorReport& t : r.tensors) {
    ++counts[type_name(t.to)];
    if (verbose) {
      std::fprintf(stderr, "  %-32s %6s -> %-5s%s\n", t.name.c_str(), type_name(t.from),
                   type_name(t.to), t.weighted ? "  (imatrix)" : "");
    }
    if (!t.note.empty()) std::fprintf(stderr, "  note: %s: %s\n", t.name.c_str(), t.note.c_str());
  }
  std::string types;
  for (const auto& [name, n] : counts) types += strformat(" %s:%d", name.c_str(), n);
  std::fprintf(stderr,
               "wrote %s in %.2f s: %s of tensor data (was %s), %.2f bits per weight, file %s\n"
               "tensor types:%s\n",
               out.c_str(), seconds, human_bytes(r.output_bytes).c_str(),
               human_bytes(r.input_bytes).c_str(), r.bits_per_weight(),
               human_bytes(r.file_bytes).c_str(), types.c_str());
  if (r.n_weighted > 0) {
    std::fprintf(stderr, "importance-weighted: %d tensors\n", r.n_weighted);
  }
  if (!r.awq_groups.empty()) {
    double before = 0, after = 0;
    int scaled = 0;
    for (const compress::AwqGroup& g : r.awq_groups) {
      before += g.error_before;
      after += g.error_after;
      scaled += g.alpha > 0 ? 1 : 0;
      if (verbose) {
        std::fprintf(stderr, "  awq %-28s alpha %.2f  weighted error %.4g -> %.4g\n",
                     g.producer.c_str(), g.alpha, g.error_before, g.error_after);
      }
    }
    std::fprintf(stderr, "awq: %d of %zu groups scaled, weighted error %.4g -> %.4g\n", scaled,
                 r.awq_groups.size(), before, after);
  }
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  std::string imatrix_path;
  bool keep_output_f16 = false, pure = false, verbose = false, no_awq = false, awq_all = false;
  int32_t n_threads = 0;
  ArgParser args("quanta quantize IN.gguf OUT.gguf TYPE [options]",
                 "Quantizes an F32, F16 or BF16 GGUF model. Which tensor gets which type "
                 "follows llama.cpp's llama-quantize (see docs/QUANTIZATION.md); without "
                 "--imatrix the blocks are byte-identical to llama-quantize's. The output "
                 "loads in llama.cpp. TYPE is one of:\n" +
                     type_list());
  args.add_string("--imatrix", "FILE", &imatrix_path,
                  "importance matrix from `quanta imatrix` or llama-imatrix (.dat or .gguf): "
                  "scales minimise the activation-weighted error");
  args.add_flag("--no-awq", &no_awq,
                "with --imatrix: no AWQ column scaling, llama.cpp's weighted quantizers only");
  args.add_flag("--awq-all", &awq_all,
                "with --imatrix: AWQ scaling for every quantized type (default: Q4_0, Q4_1)");
  args.add_flag("--keep-output-f16", &keep_output_f16,
                "store output.weight (token_embd when tied) in F16");
  args.add_flag("--pure", &pure, "the base type for every tensor (no mixes; fallbacks stay)");
  args.add_int("-t, --threads", "N", &n_threads, "threads (default: all cores)");
  args.add_flag("-v, --verbose", &verbose, "list every tensor's type");
  std::vector<std::string> positional;
  std::vector<char*> option_argv;
  split_positionals(argc, argv, &positional, &option_argv);
  if (!args.parse(static_cast<int>(option_argv.size()), option_argv.data())) return 0;
  if (positional.size() != 3) {
    fail("expected IN.gguf OUT.gguf TYPE, got %zu arguments (see --help)", positional.size());
  }
  compress::QuantizeOptions o;
  o.ftype = compress::parse_file_type(positional[2]);
  o.keep_output_f16 = keep_output_f16;
  o.pure = pure;
  o.awq = !no_awq;
  if (awq_all) o.awq_options.types.clear();
  o.n_threads = n_threads;
  o.on_tensor = draw_progress;
  compress::ImportanceMatrix imatrix;
  if (!imatrix_path.empty()) {
    imatrix = compress::ImportanceMatrix::load(imatrix_path);
    o.imatrix = &imatrix;
    o.imatrix_path = imatrix_path;
    std::fprintf(stderr, "imatrix %s: %zu entries, %d chunks of %s\n", imatrix_path.c_str(),
                 imatrix.size(), imatrix.n_chunks,
                 imatrix.dataset.empty() ? "?" : imatrix.dataset.c_str());
  }
  std::fprintf(stderr, "quantizing %s to %s (%s)\n", positional[0].c_str(),
               positional[1].c_str(), compress::file_type_info(o.ftype).name);
  const double t0 = now_seconds();
  const compress::QuantizeReport r = compress::quantize_model(positional[0], positional[1], o);
  print_summary(r, positional[1], now_seconds() - t0, verbose);
  if (o.imatrix != nullptr && r.n_weighted == 0) {
    std::fprintf(stderr, "warning: no tensor matched an imatrix entry (wrong model?)\n");
  }
  return 0;
}

}  // namespace quanta::cli
