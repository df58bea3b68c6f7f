// Hyper-parameter loading and validation.
#include "models/hparams.h"

#include <cmath>

#include "core/error.h"

namespace quanta::models {
namespace {

constexpr int64_t kMaxDim = 1 << 20;  // sanity bound for widths, counts and context

std::string key_of(const std::string& arch, const char* suffix) { return arch + "." + suffix; }

int32_t required_int(const gguf::File& f, const std::string& key, int64_t lo, int64_t hi) {
  const std::optional<int64_t> v = f.get_int(key);
  if (!v) fail("missing required metadata key '%s'", key.c_str());
  if (*v < lo || *v > hi) {
    fail("metadata key '%s' = %lld is out of range [%lld, %lld]", key.c_str(),
         static_cast<long long>(*v), static_cast<long long>(lo), static_cast<long long>(hi));
  }
  return static_cast<int32_t>(*v);
}

int32_t optional_int(const gguf::File& f, const std::string& key, int32_t fallback, int64_t lo,
                     int64_t hi) {
  if (!f.find(key)) return fallback;
  return required_int(f, key, lo, hi);
}

float finite_positive_float(const gguf::File& f, const std::string& key, std::optional<float> def) {
  const std::optional<double> v = f.get_float(key);
  if (!v) {
    if (!def) fail("missing required metadata key '%s'", key.c_str());
    return *def;
  }
  if (!std::isfinite(*v) || *v <= 0.0) {
    fail("metadata key '%s' = %g must be a finite positive number", key.c_str(), *v);
  }
  return static_cast<float>(*v);
}

void read_rope_scaling(const gguf::File& f, const std::string& arch, HParams& hp) {
  const std::string type = f.get_string(key_of(arch, "rope.scaling.type")).value_or("none");
  if (type == "none") return;
  if (type != "linear") {
    fail("unsupported rope scaling type '%s' (key '%s'); supported: none, linear", type.c_str(),
         key_of(arch, "rope.scaling.type").c_str());
  }
  const float factor = finite_positive_float(f, key_of(arch, "rope.scaling.factor"), 1.0f);
  hp.rope_freq_scale = 1.0f / factor;
}

}  // namespace

HParams read_hparams(const gguf::File& f) {
  const std::optional<std::string> arch_name = f.get_string("general.architecture");
  if (!arch_name) fail("missing required metadata key 'general.architecture'");
  HParams hp;
  hp.arch = find_arch(*arch_name);
  if (hp.arch == nullptr) {
    std::string names;
    for (const auto& n : arch_names()) names += (names.empty() ? "" : ", ") + n;
    fail("unsupported architecture '%s' (supported: %s)", arch_name->c_str(), names.c_str());
  }
  const std::string& a = *arch_name;
  hp.n_ctx_train = required_int(f, key_of(a, "context_length"), 1, kMaxDim);
  hp.n_embd = required_int(f, key_of(a, "embedding_length"), 1, kMaxDim);
  hp.n_layer = required_int(f, key_of(a, "block_count"), 1, 4096);
  hp.n_ff = required_int(f, key_of(a, "feed_forward_length"), 1, kMaxDim);
  hp.n_head = required_int(f, key_of(a, "attention.head_count"), 1, 4096);
  hp.n_head_kv = optional_int(f, key_of(a, "attention.head_count_kv"), hp.n_head, 1, hp.n_head);
  if (hp.n_head % hp.n_head_kv != 0) {
    fail("attention.head_count %d is not a multiple of attention.head_count_kv %d", hp.n_head,
         hp.n_head_kv);
  }
  const int32_t default_head_dim = hp.n_embd % hp.n_head == 0 ? hp.n_embd / hp.n_head : 0;
  hp.head_dim = optional_int(f, key_of(a, "attention.key_length"), default_head_dim, 1, 4096);
  if (hp.head_dim == 0) fail("embedding_length is not a multiple of attention.head_count");
  const int32_t value_dim =
      optional_int(f, key_of(a, "attention.value_length"), hp.head_dim, 1, 4096);
  if (value_dim != hp.head_dim) {
    fail("attention.value_length %d differs from attention.key_length %d (unsupported)",
         value_dim, hp.head_dim);
  }
  hp.n_rot = optional_int(f, key_of(a, "rope.dimension_count"), hp.head_dim, 2, hp.head_dim);
  if (hp.n_rot % 2 != 0) fail("rope.dimension_count %d must be even", hp.n_rot);
  hp.norm_eps = finite_positive_float(f, key_of(a, "attention.layer_norm_rms_epsilon"), {});
  hp.rope_freq_base = finite_positive_float(f, key_of(a, "rope.freq_base"), 10000.0f);
  read_rope_scaling(f, a, hp);
  return hp;
}

}  // namespace quanta::models
