// The model quantizer: plan (recipe), convert each tensor row-parallel, write the GGUF.
#include "compress/quantize.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "compress/recipe.h"
#include "core/error.h"
#include "core/system.h"
#include "core/thread_pool.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "quant/weighted.h"

namespace quanta::compress {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // ggml GGML_QNT_VERSION

ModelShape model_shape(const gguf::File& f) {
  ModelShape m;
  m.arch = f.get_string("general.architecture").value_or("");
  m.n_layer = static_cast<int32_t>(f.get_int(m.arch + ".block_count").value_or(0));
  m.n_head = static_cast<int32_t>(f.get_int(m.arch + ".attention.head_count").value_or(0));
  m.n_head_kv =
      static_cast<int32_t>(f.get_int(m.arch + ".attention.head_count_kv").value_or(m.n_head));
  return m;
}

bool is_float_source(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

// Metadata as llama-quantize writes it: the input's keys in order, then (re)set keys
// appended at the end (gguf_set_val removes an existing key and appends it).
void copy_metadata(const gguf::File& in, const QuantizeOptions& o, gguf::Writer& w) {
  static const char* const kReplaced[] = {
      "general.quantization_version", "general.file_type", "split.no", "split.count",
      "split.tensors.count", "quantize.imatrix.file", "quantize.imatrix.dataset",
      "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"};
  for (const gguf::KeyValue& kv : in.metadata()) {
    const bool replaced = std::any_of(std::begin(kReplaced), std::end(kReplaced),
                                      [&](const char* k) { return kv.key == k; });
    if (!replaced) w.set(kv.key, kv.value);
  }
  w.set("general.quantization_version", gguf::Value::u32(kQuantizationVersion));
  w.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(o.ftype)));
  if (o.imatrix == nullptr) return;
  w.set("quantize.imatrix.file", gguf::Value::string(o.imatrix_path));
  if (!o.imatrix->dataset.empty()) {
    w.set("quantize.imatrix.dataset", gguf::Value::string(o.imatrix->dataset));
  }
  w.set("quantize.imatrix.entries_count", gguf::Value::i32(static_cast<int32_t>(o.imatrix->size())));
  if (o.imatrix->n_chunks > 0) {
    w.set("quantize.imatrix.chunks_count", gguf::Value::i32(o.imatrix->n_chunks));
  }
}

// Importance weights for a tensor, or empty. A width mismatch is an error (llama.cpp's rule,
// token_embd excepted: its "activations" are one-hot and never collected).
std::vector<float> importance_for(const QuantizeOptions& o, const gguf::TensorInfo& t) {
  if (o.imatrix == nullptr) return {};
  std::vector<float> w = o.imatrix->importance(t.name);
  if (w.empty() || static_cast<int64_t>(w.size()) == t.ne[0]) return w;
  if (t.name == "token_embd.weight") return {};
  fail("imatrix entry '%s' has %zu columns, the tensor has %lld", t.name.c_str(), w.size(),
       static_cast<long long>(t.ne[0]));
}

// Converts all rows of `t` to `type`, rows split over the pool's threads.
// `f32` non-null: the tensor's values come from it (AWQ-scaled) instead of the file.
std::vector<uint8_t> convert_tensor(const gguf::File& in, const gguf::TensorInfo& t, GgmlType type,
                                    const float* importance, ThreadPool& pool,
                                    const float* f32 = nullptr) {
  const int64_t n_cols = t.ne[0];
  const int64_t n_rows = t.n_rows();
  const size_t src_row = row_size(t.type, n_cols);
  const size_t dst_row = row_size(type, n_cols);
  std::vector<uint8_t> out(dst_row * static_cast<size_t>(n_rows));
  std::vector<float> scratch(static_cast<size_t>(pool.n_threads() * n_cols));
  const uint8_t* src = in.tensor_data(t);
  pool.parallel_for(n_rows, 1, [&](int64_t begin, int64_t end, int thread) {
    float* row = scratch.data() + thread * n_cols;
    for (int64_t r = begin; r < end; ++r) {
      const float* x = f32 != nullptr ? f32 + r * n_cols : row;
      if (f32 == nullptr) dequantize_row(t.type, src + r * src_row, row, n_cols);
      quantize_row_weighted(type, x, out.data() + r * dst_row, n_cols, importance);
    }
  });
  return out;
}

}  // namespace

void check_not_same_file(const std::string& input, const std::string& output) {
  if (input == output) fail("the output '%s' is the input file; choose another name", output.c_str());
  struct stat si, so;
  if (stat(input.c_str(), &si) == 0 && stat(output.c_str(), &so) == 0 && si.st_dev == so.st_dev &&
      si.st_ino == so.st_ino) {
    fail("the output '%s' is the input file '%s' under another name; choose another name",
         output.c_str(), input.c_str());
  }
}

QuantizeReport quantize_model(const std::string& input, const std::string& output,
                              const QuantizeOptions& o) {
  check_not_same_file(input, output);
  const gguf::File in = gguf::File::open(input);
  std::vector<TensorDesc> descs;
  for (const gguf::TensorInfo& t : in.tensors()) descs.push_back({t.name, t.ne, t.type});
  const std::vector<size_t> order = llama_tensor_order(descs);
  std::vector<TensorDesc> ordered;
  for (size_t i : order) ordered.push_back(descs[i]);
  RecipeOptions ro;
  ro.ftype = o.ftype;
  ro.has_imatrix = o.imatrix != nullptr && o.imatrix->size() > 0;
  ro.keep_output_f16 = o.keep_output_f16;
  ro.pure = o.pure;
  const std::vector<TensorPlan> plans = plan_types(ordered, model_shape(in), ro);

  QuantizeReport report;
  for (size_t k = 0; k < order.size(); ++k) {  // validate everything before any work
    const gguf::TensorInfo& t = in.tensors()[order[k]];
    if (plans[k].convert && !is_float_source(t.type)) {
      fail("tensor '%s' is %s: quanta quantize reads F32, F16 or BF16 models (no requantizing)",
           t.name.c_str(), type_name(t.type));
    }
    if (plans[k].convert) importance_for(o, t);
  }
  gguf::Writer w;
  copy_metadata(in, o, w);
  ThreadPool pool(o.n_threads > 0 ? o.n_threads : hardware_threads());
  AwqResult awq;
  if (o.awq && ro.has_imatrix) {
    TypePlan type_plan;
    for (size_t k = 0; k < order.size(); ++k) {
      if (plans[k].convert) type_plan[in.tensors()[order[k]].name] = plans[k].type;
    }
    awq = awq_search(in, type_plan, *o.imatrix, o.awq_options, pool);
    report.awq_groups = awq.groups;
  }
  for (size_t k = 0; k < order.size(); ++k) {
    const gguf::TensorInfo& t = in.tensors()[order[k]];
    const TensorPlan& plan = plans[k];
    if (o.on_tensor) o.on_tensor(k, order.size(), t.name);
    TensorReport tr{t.name, t.ne, t.type, plan.type, false, plan.note};
    const auto scaled = awq.tensors.find(t.name);
    const float* f32 = scaled != awq.tensors.end() ? scaled->second.data() : nullptr;
    if (!plan.convert && f32 != nullptr) {  // a norm weight that absorbed 1/s (F32 only)
      QUANTA_ASSERT(t.type == GgmlType::F32);
      w.add_tensor(t.name, t.type, t.ne, reinterpret_cast<const uint8_t*>(f32), t.n_bytes);
    } else if (!plan.convert) {
      w.add_tensor(t.name, t.type, t.ne, in.tensor_data(t), t.n_bytes);
    } else {
      const auto scaled_imp = awq.importance.find(t.name);
      const std::vector<float> imp =
          scaled_imp != awq.importance.end() ? scaled_imp->second : importance_for(o, t);
      tr.weighted = !imp.empty() && has_weighted_quantizer(plan.type);
      const std::vector<uint8_t> data =
          convert_tensor(in, t, plan.type, imp.empty() ? nullptr : imp.data(), pool, f32);
      w.add_tensor(t.name, plan.type, t.ne, data.data(), data.size());
    }
    report.input_bytes += t.n_bytes;
    report.output_bytes += row_size(plan.type, t.ne[0]) * static_cast<uint64_t>(t.n_rows());
    report.n_elements += t.n_elements();
    report.n_weighted += tr.weighted ? 1 : 0;
    report.tensors.push_back(std::move(tr));
  }
  if (o.on_tensor) o.on_tensor(order.size(), order.size(), "");
  w.write(output);
  struct stat st;
  if (stat(output.c_str(), &st) == 0) report.file_bytes = static_cast<uint64_t>(st.st_size);
  return report;
}

}  // namespace quanta::compress
