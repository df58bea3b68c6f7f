// quanta: one program, several subcommands. Errors from bad input print one clear line and
// exit non-zero.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "commands.h"
#include "core/error.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"run", quanta::cli::cmd_run, "generate text from a prompt"},
    {"info", quanta::cli::cmd_info, "describe a model and whether it fits in memory"},
    {"tokenize", quanta::cli::cmd_tokenize, "print the token ids of a text"},
    {"synth", quanta::cli::cmd_synth, "write a random-weight model (tests, benchmarks, demo)"},
    {"bench", quanta::cli::cmd_bench, "measure prompt, decode and batched-decode throughput"},
    {"serve", quanta::cli::cmd_serve, "serve a model over an OpenAI-compatible HTTP API"},
    {"loadtest", quanta::cli::cmd_loadtest, "benchmark a running server (TTFT, TPOT, tokens/s)"},
    {"perplexity", quanta::cli::cmd_perplexity, "perplexity and KL divergence over a text file"},
    {"quantize", quanta::cli::cmd_quantize, "quantize an F32/F16/BF16 model (llama.cpp recipes)"},
    {"imatrix", quanta::cli::cmd_imatrix, "compute an importance matrix for calibrated quantization"},
};

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: quanta <command> [options]\n\n"
               "Runs large language models from GGUF files.\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\nRun 'quanta <command> --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::printf("quanta 0.1.0\n");
    return 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc, argv);
    } catch (const quanta::Error& e) {
      std::fprintf(stderr, "quanta %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "quanta %s: error: out of memory\n", c.name);
      return 1;
    }
  }
  std::fprintf(stderr, "quanta: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return 2;
}
