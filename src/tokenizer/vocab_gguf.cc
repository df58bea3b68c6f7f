// vocab_from_gguf: tokenizer.ggml.* metadata -> Vocab, with llama.cpp's defaults.
#include <optional>

#include "core/error.h"
#include "gguf/reader.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace quanta::tokenizer {

namespace {

const gguf::Array& required_array(const gguf::File& file, const char* key, gguf::ValueType elem) {
  const gguf::Array* array = file.get_array(key);
  if (!array) quanta::fail("%s: missing", key);
  if (array->elem_type != elem) {
    quanta::fail("%s: expected an array of %s, found an array of %s", key,
                 gguf::value_type_name(elem), gguf::value_type_name(array->elem_type));
  }
  return *array;
}

std::vector<std::string> read_strings(const gguf::Array& array) {
  std::vector<std::string> out(array.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = array.string_at(i);
  return out;
}

std::vector<float> read_scores(const gguf::File& file) {
  constexpr const char* kKey = "tokenizer.ggml.scores";
  const gguf::Array* array = file.get_array(kKey);
  if (!array) return {};
  if (array->elem_type != gguf::ValueType::kFloat32 &&
      array->elem_type != gguf::ValueType::kInt32) {
    quanta::fail("%s: expected an array of float32 or int32, found an array of %s", kKey,
                 gguf::value_type_name(array->elem_type));
  }
  std::vector<float> out(array->size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(array->float_at(i));
  return out;
}

std::vector<TokenType> read_types(const gguf::File& file) {
  constexpr const char* kKey = "tokenizer.ggml.token_type";
  if (!file.get_array(kKey)) return {};
  const gguf::Array& array = required_array(file, kKey, gguf::ValueType::kInt32);
  std::vector<TokenType> out(array.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t t = array.int_at(i);
    // llama.cpp treats any value outside the enum as undefined.
    out[i] = t >= 0 && t <= static_cast<int64_t>(TokenType::kByte) ? static_cast<TokenType>(t)
                                                                   : TokenType::kUndefined;
  }
  return out;
}

// A metadata special-token id over a default: 0xFFFFFFFF / -1 keeps the default (llama.cpp
// reads these keys as uint32 and ignores out-of-range values); other ids must be in range.
void read_special_id(const gguf::File& file, const char* key, int32_t n_vocab, int32_t& id) {
  const std::optional<int64_t> value = file.get_int(key);
  if (!value || *value == -1 || *value == 0xFFFFFFFFLL) return;
  if (*value < 0 || *value >= n_vocab) {
    quanta::fail("%s: id %lld is out of range for %d tokens", key, static_cast<long long>(*value),
                 n_vocab);
  }
  id = static_cast<int32_t>(*value);
}

}  // namespace

Vocab vocab_from_gguf(const gguf::File& file) {
  Vocab v;
  const std::optional<std::string> model = file.get_string("tokenizer.ggml.model");
  if (!model) quanta::fail("tokenizer.ggml.model: missing");
  if (*model == "llama") {
    v.kind = VocabKind::kSpm;
  } else if (*model == "gpt2") {
    v.kind = VocabKind::kBpe;
  } else {
    quanta::fail("tokenizer.ggml.model: unsupported tokenizer model '%s'", model->c_str());
  }
  v.pre = file.get_string("tokenizer.ggml.pre").value_or("");
  v.name = file.get_string("general.name").value_or("");

  v.tokens = read_strings(required_array(file, "tokenizer.ggml.tokens", gguf::ValueType::kString));
  v.scores = read_scores(file);
  v.types = read_types(file);
  if (v.kind == VocabKind::kBpe) {
    v.merges =
        read_strings(required_array(file, "tokenizer.ggml.merges", gguf::ValueType::kString));
  }

  // llama.cpp's defaults for the model kind; a default id outside the vocabulary is dropped.
  const int32_t n_vocab = v.n_vocab();
  const auto default_id = [&](int32_t id) { return id < n_vocab ? id : kNoToken; };
  if (v.kind == VocabKind::kSpm) {
    v.bos_id = default_id(1);
    v.eos_id = default_id(2);
    v.unk_id = default_id(0);
    v.add_bos = true;
    v.add_space_prefix = true;
  } else {
    v.bos_id = default_id(11);
    v.eos_id = default_id(11);
    v.add_bos = pre_tokenizer_config(v.pre).add_bos;
    v.add_space_prefix = false;
  }
  read_special_id(file, "tokenizer.ggml.bos_token_id", n_vocab, v.bos_id);
  read_special_id(file, "tokenizer.ggml.eos_token_id", n_vocab, v.eos_id);
  read_special_id(file, "tokenizer.ggml.eot_token_id", n_vocab, v.eot_id);
  read_special_id(file, "tokenizer.ggml.eom_token_id", n_vocab, v.eom_id);
  read_special_id(file, "tokenizer.ggml.unknown_token_id", n_vocab, v.unk_id);
  read_special_id(file, "tokenizer.ggml.seperator_token_id", n_vocab, v.sep_id);
  read_special_id(file, "tokenizer.ggml.padding_token_id", n_vocab, v.pad_id);

  v.add_space_prefix =
      file.get_bool("tokenizer.ggml.add_space_prefix").value_or(v.add_space_prefix);
  v.add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(v.add_bos);
  v.add_eos = file.get_bool("tokenizer.ggml.add_eos_token").value_or(v.add_eos);

  validate_vocab(v);
  return v;
}

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
  return Tokenizer(vocab_from_gguf(file));
}

}  // namespace quanta::tokenizer
