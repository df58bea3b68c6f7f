// Reading llama.cpp's tokenizer test files (shared/golden/tokenizer/*.inp / *.out) the way
// its test-tokenizer-0 does.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace quanta::tokenizer::testing {

inline constexpr const char* kGoldenVocabs[] = {
    "llama-spm", "phi-3", "gpt-2", "falcon", "starcoder", "deepseek-coder", "deepseek-llm"};

// Cases separated (and the file ended) by "\n__ggml_vocab_test__\n"; a case may contain
// newlines or be empty.
inline std::vector<std::string> split_inputs(const std::string& raw) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      cases.push_back(raw.substr(pos));
      break;
    }
    cases.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return cases;
}

// One line of space-separated ids per case.
inline std::vector<std::vector<int32_t>> read_outputs(const std::string& raw) {
  std::vector<std::vector<int32_t>> outputs;
  std::istringstream lines(raw);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<int32_t>& out = outputs.emplace_back();
    for (int32_t id; ids >> id;) out.push_back(id);
  }
  return outputs;
}

}  // namespace quanta::tokenizer::testing
