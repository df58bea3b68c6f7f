// `quanta tokenize`: prints the token ids of a text (with --pieces, also each token's text).
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace quanta::cli {

int cmd_tokenize(int argc, char** argv) {
  std::string path, text;
  bool no_bos = false, pieces = false;
  ArgParser args("quanta tokenize -m MODEL -p TEXT [--no-special] [--pieces]",
                 "Prints the token ids of TEXT, space-separated, as the model's tokenizer "
                 "produces them (with BOS/EOS as the model's metadata asks).");
  args.add_string("-m, --model", "PATH", &path, "GGUF model (or vocabulary-only) file");
  args.add_string("-p, --prompt", "TEXT", &text, "text to tokenize");
  args.add_flag("--no-special", &no_bos, "do not add BOS/EOS");
  args.add_flag("--pieces", &pieces, "print one 'id<TAB>piece' line per token instead");
  args.require("--model");
  args.require("--prompt");
  if (!args.parse(argc, argv)) return 0;
  const gguf::File file = gguf::File::open(path);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
  const std::vector<int32_t> ids = tok.encode(text, !no_bos);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (pieces) {
      std::printf("%d\t'%s'\n", ids[i], tok.token_to_piece(ids[i], true).c_str());
    } else {
      std::printf(i == 0 ? "%d" : " %d", ids[i]);
    }
  }
  if (!pieces) std::printf("\n");
  return 0;
}

}  // namespace quanta::cli
