// `quanta synth`: writes a random-weight model with quanta's own GGUF writer.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "models/synthetic.h"
#include "type_names.h"

namespace quanta::cli {

int cmd_synth(int argc, char** argv) {
  std::string out, shape = "default", type = "q8_0", arch = "llama";
  uint64_t seed = 42;
  ArgParser args("quanta synth -o PATH [options]",
                 "Writes a model with random weights (its text is meaningless) and a built-in "
                 "byte-level vocabulary, for demos, tests and benchmarks.");
  args.add_string("-o, --output", "PATH", &out, "where to write the GGUF file");
  args.add_string("--shape", "NAME", &shape, "layout: default (tiny) or tinyllama-1.1b");
  args.add_string("--type", "TYPE", &type, "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K");
  args.add_string("--arch", "ARCH", &arch, "llama or qwen2");
  args.add_uint64("--seed", "N", &seed, "random seed (default 42)");
  args.require("--output");
  if (!args.parse(argc, argv)) return 0;
  models::SyntheticSpec spec = models::synthetic_preset(shape);
  spec.type = parse_weight_type(type);
  spec.arch = arch;
  spec.seed = seed;
  models::write_synthetic_model(spec, out);
  std::fprintf(stderr, "wrote %s: random weights, %s, shape %s\n", out.c_str(), type_name(spec.type),
               shape.c_str());
  return 0;
}

}  // namespace quanta::cli
