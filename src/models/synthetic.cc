// Synthetic model writer: seeded Gaussian weights, quantized with the reference kernels.
#include "models/synthetic.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "gguf/writer.h"

namespace quanta::models {
namespace {

// splitmix64 + Box-Muller: a specified generator, identical on every platform.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : state_(seed) {}
  float next() {
    const double u1 = (static_cast<double>(bits() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(bits() >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  uint64_t bits() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

const char* const kWords[] = {"the", "and", "was", "to", "a", "he", "she", "it", "of", "in",
                              "they", "day", "time", "once", "upon", "there", "little", "big",
                              "happy", "play", "friend", "saw", "said", "with", "for", "on"};

// Vocabulary: <unk>, <s>, </s>, <0x00>..<0xFF>, printable ASCII, then "▁word" pieces.
struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 5 unused, 6 byte
};

Vocab builtin_vocab(int32_t n_vocab) {
  Vocab v;
  const auto add = [&](std::string piece, float score, int32_t type) {
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0.0f, 2);
  add("<s>", 0.0f, 3);
  add("</s>", 0.0f, 3);
  for (int b = 0; b < 256; ++b) add(strformat("<0x%02X>", b), 0.0f, 6);
  add("\xE2\x96\x81", -1.0f, 1);  // U+2581, the SentencePiece space
  for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), -2.0f, 1);
  float score = -3.0f;
  for (const char* w : kWords) add("\xE2\x96\x81" + std::string(w), score -= 0.01f, 1);
  const int32_t n_builtin = static_cast<int32_t>(v.tokens.size());
  if (n_vocab != 0 && n_vocab < n_builtin) {
    fail("synthetic: n_vocab %d is below the built-in vocabulary's %d tokens", n_vocab, n_builtin);
  }
  for (int32_t i = n_builtin; i < n_vocab; ++i) add(strformat("<unused%d>", i), 0.0f, 5);
  return v;
}

void set_metadata(gguf::Writer& w, const SyntheticSpec& s, const Vocab& vocab) {
  const std::string a = s.arch;
  w.set("general.architecture", gguf::Value::string(a));
  w.set("general.name", gguf::Value::string("quanta synthetic (random weights)"));
  w.set("quanta.synthetic", gguf::Value::boolean(true));  // `quanta run` warns about it
  w.set("general.alignment", gguf::Value::u32(32));
  w.set(a + ".context_length", gguf::Value::u32(s.n_ctx));
  w.set(a + ".embedding_length", gguf::Value::u32(s.n_embd));
  w.set(a + ".block_count", gguf::Value::u32(s.n_layer));
  w.set(a + ".feed_forward_length", gguf::Value::u32(s.n_ff));
  w.set(a + ".attention.head_count", gguf::Value::u32(s.n_head));
  w.set(a + ".attention.head_count_kv", gguf::Value::u32(s.n_head_kv));
  w.set(a + ".attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
  w.set(a + ".rope.freq_base", gguf::Value::f32(s.rope_freq_base));
  w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(vocab.tokens));
  w.set("tokenizer.ggml.scores", gguf::Value::f32_array(vocab.scores));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(vocab.types));
  w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
}

class TensorMaker {
 public:
  TensorMaker(gguf::Writer& w, const SyntheticSpec& s) : w_(w), rng_(s.seed), spec_(s) {}

  void matrix(const std::string& name, int64_t n_cols, int64_t n_rows) {
    const GgmlType type = synthetic_tensor_type(spec_, name);
    const float scale = 1.0f / std::sqrt(static_cast<float>(n_cols));
    std::vector<float> values(static_cast<size_t>(n_cols * n_rows));
    for (float& v : values) v = rng_.next() * scale;
    const TypeTraits& traits = type_traits(type);
    if (n_cols % traits.block_size != 0) {
      fail("synthetic: tensor '%s' width %lld is not a multiple of the %s block size %lld",
           name.c_str(), static_cast<long long>(n_cols), traits.name,
           static_cast<long long>(traits.block_size));
    }
    const size_t row_bytes = row_size(type, n_cols);
    std::vector<uint8_t> data(row_bytes * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) {
      traits.from_float(values.data() + r * n_cols, data.data() + r * row_bytes, n_cols);
    }
    w_.add_tensor(name, type, {n_cols, n_rows}, data.data(), data.size());
  }

  void vector(const std::string& name, int64_t n, float base, float noise) {
    std::vector<float> values(n);
    for (float& v : values) v = base + noise * rng_.next();
    w_.add_tensor(name, GgmlType::F32, {n}, values.data(), values.size() * sizeof(float));
  }

 private:
  gguf::Writer& w_;
  Gaussian rng_;
  const SyntheticSpec& spec_;
};

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int32_t layer, int32_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

GgmlType synthetic_tensor_type(const SyntheticSpec& s, const std::string& name) {
  if (!s.llama_mix || type_traits(s.type).block_size == 1) return s.type;
  if (name == "output.weight") return s.type == GgmlType::Q8_0 ? s.type : GgmlType::Q6_K;
  const bool k_m = s.type == GgmlType::Q4_K || s.type == GgmlType::Q5_K;
  int32_t layer = -1;
  if (!k_m || std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return s.type;
  const bool more = ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight");
  return more && use_more_bits(layer, s.n_layer) ? GgmlType::Q6_K : s.type;
}

SyntheticSpec synthetic_preset(const std::string& name) {
  SyntheticSpec s;
  if (name == "default") return s;
  if (name == "tinyllama-1.1b") {
    s.n_embd = 2048;
    s.n_layer = 22;
    s.n_head = 32;
    s.n_head_kv = 4;
    s.n_ff = 5632;
    s.n_ctx = 2048;
    s.n_vocab = 32000;
    return s;
  }
  fail("unknown model shape '%s' (known: default, tinyllama-1.1b)", name.c_str());
}

void write_synthetic_model(const SyntheticSpec& s, const std::string& path) {
  if (s.arch != "llama" && s.arch != "qwen2") fail("synthetic: unknown arch '%s'", s.arch.c_str());
  if (!is_supported_type(s.type)) fail("synthetic: unsupported weight type %s", type_name(s.type));
  if (s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0) {
    fail("synthetic: n_embd must divide by n_head and n_head by n_head_kv");
  }
  const Vocab vocab = builtin_vocab(s.n_vocab);
  const int64_t n_vocab = static_cast<int64_t>(vocab.tokens.size());
  const int64_t head_dim = s.n_embd / s.n_head;
  gguf::Writer w;
  set_metadata(w, s, vocab);
  TensorMaker make(w, s);
  make.matrix("token_embd.weight", s.n_embd, n_vocab);
  make.vector("output_norm.weight", s.n_embd, 1.0f, 0.05f);
  if (!s.tied_output) make.matrix("output.weight", s.n_embd, n_vocab);
  for (int32_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    make.vector(p + "attn_norm.weight", s.n_embd, 1.0f, 0.05f);
    make.matrix(p + "attn_q.weight", s.n_embd, s.n_head * head_dim);
    make.matrix(p + "attn_k.weight", s.n_embd, s.n_head_kv * head_dim);
    make.matrix(p + "attn_v.weight", s.n_embd, s.n_head_kv * head_dim);
    if (s.arch == "qwen2") {
      make.vector(p + "attn_q.bias", s.n_head * head_dim, 0.0f, 0.02f);
      make.vector(p + "attn_k.bias", s.n_head_kv * head_dim, 0.0f, 0.02f);
      make.vector(p + "attn_v.bias", s.n_head_kv * head_dim, 0.0f, 0.02f);
    }
    make.matrix(p + "attn_output.weight", s.n_head * head_dim, s.n_embd);
    make.vector(p + "ffn_norm.weight", s.n_embd, 1.0f, 0.05f);
    make.matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff);
    make.matrix(p + "ffn_up.weight", s.n_embd, s.n_ff);
    make.matrix(p + "ffn_down.weight", s.n_ff, s.n_embd);
  }
  w.write(path);
}

}  // namespace quanta::models
