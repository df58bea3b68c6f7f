// `quanta imatrix -m MODEL -f TEXT -o FILE`: runs the model over a calibration text and
// writes the importance matrix (llama.cpp's imatrix formats) for `quanta quantize --imatrix`.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "compress/calibrate.h"
#include "core/error.h"
#include "core/system.h"

namespace quanta::cli {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open text file '%s'", path.c_str());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int cmd_imatrix(int argc, char** argv) {
  std::string model_path, text_path, out = "imatrix.dat";
  compress::CalibrationOptions o;
  ArgParser args("quanta imatrix -m MODEL -f TEXT [-o FILE] [options]",
                 "Computes an importance matrix as llama-imatrix does: the text is cut into "
                 "chunks of --ctx tokens (first token BOS), and for every matmul weight the "
                 "mean squared activation of each input column is accumulated. Written in "
                 "llama.cpp's legacy .dat layout, or its GGUF imatrix layout when FILE ends "
                 "in .gguf; both work with `quanta quantize --imatrix` and llama-quantize.");
  args.add_string("-m, --model", "PATH", &model_path, "GGUF model (F32/F16/BF16 is best)");
  args.add_string("-f, --file", "PATH", &text_path, "calibration text");
  args.add_string("-o, --output", "PATH", &out, "output file (default imatrix.dat)");
  args.add_int("-c, --ctx", "N", &o.n_ctx, "tokens per chunk (default 512)");
  args.add_int("--chunks", "N", &o.n_chunks, "chunks to process (default: the whole text)");
  args.add_flag("--process-output", &o.process_output, "also collect output.weight");
  args.add_int("-t, --threads", "N", &o.n_threads, "threads (default: all cores)");
  args.require("--model");
  args.require("--file");
  if (!args.parse(argc, argv)) return 0;
  if (o.n_chunks == 0 || o.n_chunks < -1) fail("--chunks must be positive (got %d)", o.n_chunks);
  const std::unique_ptr<models::Model> model = models::Model::load(model_path);
  const std::string text = read_text(text_path);
  o.on_chunk = [](int32_t done, int32_t total, double ppl) {
    std::fprintf(stderr, "\rchunk %d/%d, perplexity %.4f", done, total, ppl);
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  const double t0 = now_seconds();
  const compress::CalibrationResult r = compress::calibrate(*model, text, text_path, o);
  r.imatrix.save(out);
  std::fprintf(stderr,
               "wrote %s: %zu entries from %d chunks of %d tokens (%lld tokens in the text), "
               "perplexity %.4f, %.2f s\n",
               out.c_str(), r.imatrix.size(), r.n_chunks, o.n_ctx,
               static_cast<long long>(r.n_tokens), r.perplexity, now_seconds() - t0);
  return 0;
}

}  // namespace quanta::cli
