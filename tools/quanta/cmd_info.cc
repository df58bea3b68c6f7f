// `quanta info`: architecture, parameters, tensor types and whether weights + KV cache fit
// in this machine's memory at a given context length, and the kernel path it would run on.
#include <cstdio>
#include <map>

#include "args.h"
#include "commands.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/system.h"
#include "format.h"
#include "gguf/reader.h"
#include "kernels/kernel_table.h"
#include "models/context.h"
#include "models/hparams.h"

namespace quanta::cli {
namespace {

void print_tensor_summary(const gguf::File& file) {
  std::map<std::string, int> counts;
  uint64_t bytes = 0;
  int64_t params = 0;
  for (const auto& t : file.tensors()) {
    ++counts[type_name(t.type)];
    bytes += t.n_bytes;
    params += t.n_elements();
  }
  std::printf("parameters:    %s (%lld)\n", human_count(params).c_str(),
              static_cast<long long>(params));
  std::printf("tensors:       %zu:", file.tensors().size());
  for (const auto& [name, n] : counts) std::printf(" %s x%d", name.c_str(), n);
  std::printf("\nweights:       %s (%.2f bits per weight)\n", human_bytes(bytes).c_str(),
              params > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0);
}

void print_memory(const models::HParams& hp, uint64_t weight_bytes, int32_t n_ctx) {
  models::ContextOptions o;
  o.n_ctx = n_ctx;
  o = models::resolve_options(hp, o);
  const uint64_t kv = models::kv_layout_for(hp, o).total_bytes();
  const uint64_t need = weight_bytes + kv;
  const uint64_t total = total_ram_bytes();
  const uint64_t avail = available_ram_bytes();
  std::printf("KV cache:      %s at context %d (f32 K and V, %d layers x %d KV heads x %d)\n",
              human_bytes(kv).c_str(), o.n_ctx, hp.n_layer, hp.n_head_kv, hp.head_dim);
  std::printf("memory needed: %s (weights + KV cache)\n", human_bytes(need).c_str());
  std::printf("this machine:  %s RAM, %s available\n", human_bytes(total).c_str(),
              human_bytes(avail).c_str());
  std::printf("verdict:       %s\n", need <= avail ? "fits" : "does not fit");
}

// The active kernel path (QUANTA_FORCE_ISA or the best), the others this CPU runs, and the
// CPU's vector extensions.
void print_kernels() {
  std::string paths;
  for (const std::string& isa : kernels::available_isas()) {
    paths += (paths.empty() ? "" : ", ") + isa;
  }
  std::printf("kernels:       %s (this CPU runs %s; %s)\n", kernels::active().isa, paths.c_str(),
              describe(cpu_features()).c_str());
}

}  // namespace

int cmd_info(int argc, char** argv) {
  std::string path;
  int32_t n_ctx = 0;
  ArgParser args("quanta info -m MODEL [-c N]",
                 "Describes a GGUF model: architecture, hyper-parameters, parameter count, "
                 "tensor types, and the memory needed for weights plus KV cache at a context "
                 "length, against the RAM of this machine; and the kernel path (instruction set) "
                 "it would run on (QUANTA_FORCE_ISA=NAME forces one).");
  args.add_string("-m, --model", "PATH", &path, "GGUF model file");
  args.add_int("-c, --ctx", "N", &n_ctx, "context length (default: the model's training context)");
  args.require("--model");
  if (!args.parse(argc, argv)) return 0;
  if (n_ctx < 0) fail("--ctx must be positive");
  const gguf::File file = gguf::File::open(path);
  std::printf("model:         %s (GGUF v%u, %s)\n", path.c_str(), file.version(),
              human_bytes(file.file_size()).c_str());
  const std::string arch = file.get_string("general.architecture").value_or("(none)");
  if (auto name = file.get_string("general.name")) std::printf("name:          %s\n", name->c_str());
  print_tensor_summary(file);
  models::HParams hp;
  try {
    hp = models::read_hparams(file);
  } catch (const Error& e) {
    std::printf("architecture:  %s (cannot run: %s)\n", arch.c_str(), e.what());
    return 1;
  }
  const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
  if (embd != nullptr && embd->ne.size() >= 2) hp.n_vocab = static_cast<int32_t>(embd->ne[1]);
  std::printf("architecture:  %s, %s\n", arch.c_str(), hp.arch->description);
  std::printf("shape:         %d layers, embd %d, ffn %d, heads %d (kv %d) x %d, vocab %d, "
              "trained context %d\n",
              hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_vocab,
              hp.n_ctx_train);
  uint64_t weight_bytes = 0;
  for (const auto& t : file.tensors()) weight_bytes += t.n_bytes;
  print_memory(hp, weight_bytes, n_ctx > 0 ? n_ctx : hp.n_ctx_train);
  print_kernels();
  return 0;
}

}  // namespace quanta::cli
