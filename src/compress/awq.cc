// AWQ-style scaling: per-group alpha search on the importance matrix, then the scaled weights
// and the producers that absorb 1/s (see awq.h).
#include "compress/awq.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/weighted.h"

namespace quanta::compress {
namespace {

constexpr int kAlphaSteps = 20;  // alpha in {0, 1/20, ..., 1}

// A group before the search: consumer column c takes the scale of producer index map[c].
struct GroupSpec {
  AwqGroup group;
  bool rows = false;         // producer rows are scaled (else a norm weight vector)
  std::vector<int64_t> map;  // [n_cols of the consumers] -> producer index
  int64_t n_producer = 0;
};

std::string blk(int32_t i, const char* suffix) {
  return "blk." + std::to_string(i) + "." + suffix;
}

std::vector<float> load_f32(const gguf::File& in, const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const size_t row = row_size(t.type, t.ne[0]);
  for (int64_t r = 0; r < t.n_rows(); ++r) {
    dequantize_row(t.type, in.tensor_data(t) + r * row, out.data() + r * t.ne[0], t.ne[0]);
  }
  return out;
}

// Every consumer is planned for conversion, 2-D, `n_cols` wide, and has importance entries.
bool consumers_ok(const gguf::File& in, const TypePlan& plan, const ImportanceMatrix& im,
                  const AwqOptions& o, const std::vector<std::string>& names, int64_t n_cols) {
  for (const std::string& n : names) {
    const gguf::TensorInfo* t = in.find_tensor(n);
    if (t == nullptr || t->ne.size() != 2 || t->ne[0] != n_cols || !plan.count(n)) return false;
    if (type_traits(plan.at(n)).block_size == 1) return false;  // F32/F16/BF16: nothing to gain
    if (!o.types.empty() &&
        std::find(o.types.begin(), o.types.end(), plan.at(n)) == o.types.end()) {
      return false;
    }
    if (static_cast<int64_t>(im.importance(n).size()) != n_cols) return false;
  }
  return !names.empty();
}

// The norm groups (attn_norm -> q/k/v or qkv, ffn_norm -> gate/up) of layer i.
void norm_groups(const gguf::File& in, const TypePlan& plan, const ImportanceMatrix& im,
                 const AwqOptions& o, int32_t i, std::vector<GroupSpec>& out) {
  const std::pair<const char*, std::vector<const char*>> kGroups[] = {
      {"attn_norm.weight", {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_qkv.weight"}},
      {"ffn_norm.weight", {"ffn_gate.weight", "ffn_up.weight"}}};
  for (const auto& [norm, candidates] : kGroups) {
    const gguf::TensorInfo* nt = in.find_tensor(blk(i, norm));
    if (nt == nullptr || nt->type != GgmlType::F32 || nt->ne.size() != 1) continue;
    GroupSpec g;
    g.group.producer = nt->name;
    for (const char* c : candidates) {
      if (in.find_tensor(blk(i, c)) != nullptr) g.group.consumers.push_back(blk(i, c));
    }
    if (!consumers_ok(in, plan, im, o, g.group.consumers, nt->ne[0])) continue;
    g.n_producer = nt->ne[0];
    g.map.resize(static_cast<size_t>(nt->ne[0]));
    for (int64_t c = 0; c < nt->ne[0]; ++c) g.map[c] = c;
    out.push_back(std::move(g));
  }
}

// Row groups of layer i: attn_v rows -> attn_output columns (query head h reads KV head
// h / (n_head / n_head_kv)), ffn_up rows -> ffn_down columns. Only without biases.
void row_groups(const gguf::File& in, const TypePlan& plan, const ImportanceMatrix& im,
                const AwqOptions& o, int32_t i, int32_t n_head, int32_t n_head_kv,
                std::vector<GroupSpec>& out) {
  const std::pair<const char*, const char*> kGroups[] = {{"attn_v", "attn_output"},
                                                         {"ffn_up", "ffn_down"}};
  for (const auto& [prod, cons] : kGroups) {
    const gguf::TensorInfo* pt = in.find_tensor(blk(i, prod) + ".weight");
    const gguf::TensorInfo* ct = in.find_tensor(blk(i, cons) + ".weight");
    if (pt == nullptr || ct == nullptr || pt->ne.size() != 2 || !plan.count(pt->name)) continue;
    if (in.find_tensor(blk(i, prod) + ".bias") != nullptr) continue;
    GroupSpec g;
    g.rows = true;
    g.group.producer = pt->name;
    g.group.consumers = {ct->name};
    if (!consumers_ok(in, plan, im, o, g.group.consumers, ct->ne[0])) continue;
    const int64_t n_cols = ct->ne[0];
    g.n_producer = pt->ne[1];
    g.map.resize(static_cast<size_t>(n_cols));
    if (std::string(prod) == "ffn_up") {
      if (g.n_producer != n_cols) continue;
      for (int64_t c = 0; c < n_cols; ++c) g.map[c] = c;
    } else {
      if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv != 0 || n_cols % n_head != 0)
        continue;
      const int64_t hd = n_cols / n_head;
      if (g.n_producer != hd * n_head_kv) continue;
      for (int64_t c = 0; c < n_cols; ++c) g.map[c] = (c / hd) / (n_head / n_head_kv) * hd + c % hd;
    }
    out.push_back(std::move(g));
  }
}

// Per-producer-index importance: the mean over the consumer columns that map to it.
std::vector<float> producer_importance(const GroupSpec& g, const std::vector<float>& a) {
  std::vector<double> sum(static_cast<size_t>(g.n_producer), 0.0);
  std::vector<int> n(static_cast<size_t>(g.n_producer), 0);
  for (size_t c = 0; c < g.map.size(); ++c) {
    sum[g.map[c]] += a[c];
    ++n[g.map[c]];
  }
  std::vector<float> out(sum.size());
  for (size_t k = 0; k < out.size(); ++k) out[k] = n[k] ? static_cast<float>(sum[k] / n[k]) : 0.0f;
  return out;
}

std::vector<float> column_scales(const GroupSpec& g, const std::vector<float>& s_prod) {
  std::vector<float> s(g.map.size());
  for (size_t c = 0; c < s.size(); ++c) s[c] = s_prod[g.map[c]];
  return s;
}

// Searches alpha for one group and applies it to `result` (tensors loaded on demand).
void search_group(const gguf::File& in, const TypePlan& plan, const ImportanceMatrix& im,
                  GroupSpec& g, ThreadPool& pool, AwqResult& result) {
  auto data = [&](const std::string& name) -> std::vector<float>& {
    auto it = result.tensors.find(name);
    if (it == result.tensors.end()) {
      it = result.tensors.emplace(name, load_f32(in, *in.find_tensor(name))).first;
    }
    return it->second;
  };
  const std::vector<float> a_prod = producer_importance(g, im.importance(g.group.consumers[0]));
  double best = -1.0;
  for (int step = 0; step <= kAlphaSteps; ++step) {
    const float alpha = static_cast<float>(step) / kAlphaSteps;
    const std::vector<float> s = column_scales(g, awq_scales(a_prod, alpha));
    double err = 0.0;
    for (const std::string& name : g.group.consumers) {
      const gguf::TensorInfo* t = in.find_tensor(name);
      const std::vector<float> a = im.importance(name);
      err += scaled_quant_error(plan.at(name), data(name).data(), t->n_rows(), t->ne[0], a.data(),
                                step == 0 ? nullptr : s.data(), pool);
    }
    if (step == 0) g.group.error_before = err;
    if (best < 0 || err < best) {  // ties keep the smaller alpha
      best = err;
      g.group.alpha = alpha;
    }
  }
  g.group.error_after = best;
  const std::vector<float> s_prod = awq_scales(a_prod, g.group.alpha);
  const std::vector<float> s = column_scales(g, s_prod);
  g.group.scales = s;
  for (const std::string& name : g.group.consumers) {
    std::vector<float>& w = data(name);
    const int64_t n_cols = static_cast<int64_t>(s.size());
    for (size_t k = 0; k < w.size(); ++k) w[k] *= s[k % n_cols];
    std::vector<float> a = im.importance(name);
    for (size_t c = 0; c < a.size(); ++c) a[c] /= s[c] * s[c];
    result.importance[name] = std::move(a);
  }
  std::vector<float>& p = data(g.group.producer);
  const int64_t row = g.rows ? static_cast<int64_t>(p.size()) / g.n_producer : 1;
  for (size_t k = 0; k < p.size(); ++k) p[k] /= s_prod[k / row];
}

}  // namespace

std::vector<float> awq_scales(const std::vector<float>& a, float alpha) {
  std::vector<float> s(a.size(), 1.0f);
  if (alpha == 0.0f || a.empty()) return s;
  const float amax = *std::max_element(a.begin(), a.end());
  if (!(amax > 0.0f) || !std::isfinite(amax)) return s;
  float smin = 0.0f, smax = 0.0f;
  for (size_t j = 0; j < a.size(); ++j) {
    s[j] = std::pow(std::max(a[j], 1e-6f * amax), 0.5f * alpha);
    smin = j == 0 ? s[j] : std::min(smin, s[j]);
    smax = j == 0 ? s[j] : std::max(smax, s[j]);
  }
  const float norm = std::sqrt(smin * smax);
  for (float& v : s) v /= norm;
  return s;
}

double scaled_quant_error(GgmlType type, const float* w, int64_t n_rows, int64_t n_cols,
                          const float* a, const float* s, ThreadPool& pool) {
  std::vector<double> row_err(static_cast<size_t>(n_rows));
  std::vector<float> imp(a, a + n_cols);
  if (s != nullptr) {
    for (int64_t j = 0; j < n_cols; ++j) imp[j] /= s[j] * s[j];
  }
  const size_t q_bytes = row_size(type, n_cols);
  std::vector<float> scratch(static_cast<size_t>(pool.n_threads()) * 2 * n_cols);
  std::vector<uint8_t> qbuf(static_cast<size_t>(pool.n_threads()) * q_bytes);
  pool.parallel_for(n_rows, 1, [&](int64_t begin, int64_t end, int thread) {
    float* x = scratch.data() + static_cast<size_t>(thread) * 2 * n_cols;
    float* back = x + n_cols;
    uint8_t* q = qbuf.data() + static_cast<size_t>(thread) * q_bytes;
    for (int64_t r = begin; r < end; ++r) {
      const float* row = w + r * n_cols;
      for (int64_t j = 0; j < n_cols; ++j) x[j] = s != nullptr ? row[j] * s[j] : row[j];
      quantize_row_weighted(type, x, q, n_cols, imp.data());
      dequantize_row(type, q, back, n_cols);
      double e = 0.0;
      for (int64_t j = 0; j < n_cols; ++j) {
        const double d = static_cast<double>(row[j]) - (s != nullptr ? back[j] / s[j] : back[j]);
        e += a[j] * d * d;
      }
      row_err[r] = e;
    }
  });
  double total = 0.0;
  for (double e : row_err) total += e;
  return total;
}

AwqResult awq_search(const gguf::File& in, const TypePlan& plan, const ImportanceMatrix& imatrix,
                     const AwqOptions& options, ThreadPool& pool) {
  AwqResult result;
  const std::string arch = in.get_string("general.architecture").value_or("");
  if (arch != "llama" && arch != "qwen2") return result;
  const int32_t n_layer = static_cast<int32_t>(in.get_int(arch + ".block_count").value_or(0));
  const int32_t n_head =
      static_cast<int32_t>(in.get_int(arch + ".attention.head_count").value_or(0));
  const int32_t n_head_kv =
      static_cast<int32_t>(in.get_int(arch + ".attention.head_count_kv").value_or(n_head));
  for (int32_t i = 0; i < n_layer; ++i) {
    std::vector<GroupSpec> groups;
    norm_groups(in, plan, imatrix, options, i, groups);
    row_groups(in, plan, imatrix, options, i, n_head, n_head_kv, groups);
    for (GroupSpec& g : groups) {
      search_group(in, plan, imatrix, g, pool, result);
      result.groups.push_back(g.group);
    }
  }
  return result;
}

}  // namespace quanta::compress
