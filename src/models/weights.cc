// Weight binding: name lookup, shape checks and type checks against the hyper-parameters.
#include "models/weights.h"

#include <cstdlib>
#include <new>
#include <string>

#include "core/error.h"
#include "kernels/repack.h"

namespace quanta::models {
namespace {

std::string dims_string(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

class Binder {
 public:
  explicit Binder(const gguf::File& file) : file_(file) {}

  const gguf::TensorInfo* find(const std::string& name, bool required) const {
    const gguf::TensorInfo* info = file_.find_tensor(name);
    if (info == nullptr && required) fail("missing tensor '%s'", name.c_str());
    return info;
  }

  void check_dims(const gguf::TensorInfo& info, const std::vector<int64_t>& want) const {
    std::vector<int64_t> have = info.ne;
    while (have.size() > want.size() && have.back() == 1) have.pop_back();
    if (have != want) {
      fail("tensor '%s': shape %s, expected %s", info.name.c_str(), dims_string(info.ne).c_str(),
           dims_string(want).c_str());
    }
  }

  // A 2-D weight with ne = [n_cols, n_rows] in any supported type.
  ops::WeightView matrix(const std::string& name, int64_t n_cols, int64_t n_rows,
                         bool required = true) const {
    const gguf::TensorInfo* info = find(name, required);
    if (info == nullptr) return {};
    check_dims(*info, {n_cols, n_rows});
    if (!is_supported_type(info->type)) {
      fail("tensor '%s': unsupported tensor type %s (code %u)", name.c_str(),
           type_name(info->type), static_cast<unsigned>(info->type));
    }
    ops::WeightView w;
    w.type = info->type;
    w.n_cols = n_cols;
    w.n_rows = n_rows;
    w.row_bytes = row_size(info->type, n_cols);
    w.data = file_.tensor_data(*info);
    return w;
  }

  // A 1-D F32 vector (norm weights, biases, frequency factors).
  const float* vector(const std::string& name, int64_t n, bool required = true) const {
    const gguf::TensorInfo* info = find(name, required);
    if (info == nullptr) return nullptr;
    check_dims(*info, {n});
    if (info->type != GgmlType::F32) {
      fail("tensor '%s': type %s, expected f32", name.c_str(), type_name(info->type));
    }
    return reinterpret_cast<const float*>(file_.tensor_data(*info));
  }

 private:
  const gguf::File& file_;
};

LayerWeights bind_layer(const Binder& b, const HParams& hp, int layer) {
  const std::string p = "blk." + std::to_string(layer) + ".";
  LayerWeights w;
  w.attn_norm = b.vector(p + "attn_norm.weight", hp.n_embd);
  w.wq = b.matrix(p + "attn_q.weight", hp.n_embd, hp.q_dim());
  w.wk = b.matrix(p + "attn_k.weight", hp.n_embd, hp.kv_dim());
  w.wv = b.matrix(p + "attn_v.weight", hp.n_embd, hp.kv_dim());
  w.wo = b.matrix(p + "attn_output.weight", hp.q_dim(), hp.n_embd);
  const bool bias = hp.arch->qkv_bias;
  w.bq = b.vector(p + "attn_q.bias", hp.q_dim(), bias);
  w.bk = b.vector(p + "attn_k.bias", hp.kv_dim(), bias);
  w.bv = b.vector(p + "attn_v.bias", hp.kv_dim(), bias);
  w.ffn_norm = b.vector(p + "ffn_norm.weight", hp.n_embd);
  w.w_gate = b.matrix(p + "ffn_gate.weight", hp.n_embd, hp.n_ff);
  w.w_up = b.matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff);
  w.w_down = b.matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
  return w;
}

}  // namespace

ModelWeights bind_weights(const gguf::File& file, HParams& hp) {
  const Binder b(file);
  const gguf::TensorInfo* embd = b.find("token_embd.weight", true);
  if (embd->ne.size() < 2 || embd->ne[1] <= 0 || embd->ne[1] > (1 << 24)) {
    fail("tensor 'token_embd.weight': shape %s, expected [%d, n_vocab]",
         dims_string(embd->ne).c_str(), hp.n_embd);
  }
  hp.n_vocab = static_cast<int32_t>(embd->ne[1]);
  ModelWeights w;
  w.token_embd = b.matrix("token_embd.weight", hp.n_embd, hp.n_vocab);
  w.output_norm = b.vector("output_norm.weight", hp.n_embd);
  w.output = b.matrix("output.weight", hp.n_embd, hp.n_vocab, /*required=*/false);
  w.tied_output = w.output.empty();
  if (w.tied_output) w.output = w.token_embd;
  w.rope_freqs = b.vector("rope_freqs.weight", hp.n_rot / 2, /*required=*/false);
  w.layers.reserve(hp.n_layer);
  for (int l = 0; l < hp.n_layer; ++l) w.layers.push_back(bind_layer(b, hp, l));
  return w;
}

void repack_weights(ModelWeights& w, const kernels::KernelTable& table,
                    const std::function<void(const uint8_t*, size_t)>& release) {
  std::vector<ops::WeightView*> todo;
  const auto consider = [&](ops::WeightView& m) {
    if (m.empty() || m.layout != kernels::WeightLayout::kGguf) return;
    const kernels::WeightLayout layout = table.preferred_layout[static_cast<uint32_t>(m.type)];
    if (layout != kernels::WeightLayout::kGguf && kernels::layout_fits(layout, m.type, m.n_cols, m.n_rows)) {
      todo.push_back(&m);
    }
  };
  for (LayerWeights& l : w.layers) {
    for (ops::WeightView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      consider(*m);
    }
  }
  if (!w.tied_output) consider(w.output);
  if (todo.empty()) return;
  constexpr size_t kAlign = 64;  // every matrix starts on a cache line
  size_t total = 0;
  for (const ops::WeightView* m : todo) {
    total += (m->row_bytes * static_cast<size_t>(m->n_rows) + kAlign - 1) / kAlign * kAlign;
  }
  // Not zeroed: every byte is written below, matrix by matrix, while the sources are dropped.
  auto* base = static_cast<uint8_t*>(std::aligned_alloc(kAlign, total));
  if (base == nullptr) throw std::bad_alloc();
  w.repacked.reset(base, [](const uint8_t* p) { std::free(const_cast<uint8_t*>(p)); });
  w.repacked_bytes = total;
  uint8_t* next = base;
  for (ops::WeightView* m : todo) {
    const size_t bytes = m->row_bytes * static_cast<size_t>(m->n_rows);
    const kernels::WeightLayout layout = table.preferred_layout[static_cast<uint32_t>(m->type)];
    kernels::repack_rows(layout, m->type, m->n_cols, m->data, next, m->n_rows);
    release(m->data, bytes);
    m->data = next;
    m->layout = layout;
    next += (bytes + kAlign - 1) / kAlign * kAlign;
  }
}

}  // namespace quanta::models
