// KvCache: per-layer block pools of F32, F16, Q8_0 or Q4_0 K/V rows (quantized rows packed
// across heads narrower than a block).
#include "kv/kv_cache.h"

#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/weighted.h"

namespace quanta::kv {

uint64_t KvLayout::total_bytes() const {
  return 2ull * n_layer * static_cast<uint64_t>(n_blocks) * block_bytes();
}

void check_kv_type(GgmlType type) {
  if (type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::Q8_0 &&
      type != GgmlType::Q4_0) {
    fail("KV cache type must be %s (got %s)", kv_type_choices(), type_name(type));
  }
}

void check_kv_type(GgmlType type, int32_t head_dim, int32_t n_kv_head) {
  check_kv_type(type);
  const int64_t block = type_traits(type).block_size;
  if (head_dim <= 0 || n_kv_head <= 0 ||
      (static_cast<int64_t>(n_kv_head) * head_dim) % block != 0) {
    fail(
        "KV cache type %s needs a K/V row (KV heads x head size) that is a multiple of %lld "
        "values; this model's is %d x %d (use f32 or f16)",
        type_name(type), static_cast<long long>(block), n_kv_head, head_dim);
  }
}

GgmlType parse_kv_type(const std::string& name, const char* flag) {
  const std::string lower = ascii_lower(name);
  if (lower == "f32") return GgmlType::F32;
  if (lower == "f16") return GgmlType::F16;
  if (lower == "q8_0") return GgmlType::Q8_0;
  if (lower == "q4_0") return GgmlType::Q4_0;
  fail("invalid value '%s' for %s (expected %s)", name.c_str(), flag, kv_type_choices());
}

const char* kv_type_choices() {
  return "f32, f16, q8_0 or q4_0";
}

KvCache::KvCache(const KvLayout& layout) : layout_(layout), pool_(layout.n_blocks) {
  QUANTA_ASSERT(layout.n_layer > 0 && layout.n_blocks > 0 && layout.block_size > 0);
  check_kv_type(layout.type, layout.head_dim, layout.n_kv_head);
  const size_t bytes = static_cast<size_t>(layout.n_blocks) * layout.block_bytes();
  if (layout.type == GgmlType::Q4_0) {
    ones_.assign(static_cast<size_t>(layout.row_heads()) * layout.head_dim, 1.0f);
  }
  k_.reserve(layout.n_layer);
  v_.reserve(layout.n_layer);
  for (int32_t l = 0; l < layout.n_layer; ++l) {
    k_.emplace_back(bytes);
    v_.emplace_back(bytes);
  }
}

size_t KvCache::row_offset(const BlockTable& table, int32_t pos) const {
  QUANTA_ASSERT(pos >= 0 && pos < table.n_tokens());
  const size_t block = static_cast<size_t>(table.blocks()[pos / layout_.block_size]);
  return block * layout_.block_bytes() +
         static_cast<size_t>(pos % layout_.block_size) * layout_.row_bytes();
}

void KvCache::store_row(const float* src, uint8_t* dst, int64_t n) const {
  switch (layout_.type) {
    case GgmlType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      break;
    case GgmlType::F16: {
      uint16_t* h = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(src[i]);
      break;
    }
    case GgmlType::Q4_0:
      // ggml's error-minimizing scale search (equal importances) instead of max / -8.
      quantize_row_weighted(GgmlType::Q4_0, src, dst, n, ones_.data());
      break;
    default:
      type_traits(layout_.type).from_float(src, dst, n);
      break;
  }
}

void KvCache::store(int32_t layer, const BlockTable& table, int32_t pos, const float* k,
                    const float* v) {
  if (key_transform_.active()) {
    key_transform_.apply_key(layer, k, key_scratch_.data());
    k = key_scratch_.data();
    if (key_transform_.has_values()) {
      key_transform_.apply_value(layer, v, key_scratch_.data() + layout_.row_elems());
      v = key_scratch_.data() + layout_.row_elems();
    }
  }
  const size_t base = row_offset(table, pos);
  const size_t row_stride = static_cast<size_t>(layout_.block_size) * layout_.row_bytes();
  const int64_t n = static_cast<int64_t>(layout_.row_heads()) * layout_.head_dim;
  const bool metric_rounding = layout_.type == GgmlType::Q4_0 && key_transform_.active();
  // The transform's head holding row r's first values, and its size.
  const int32_t joint = key_transform_.active() ? key_transform_.joint_heads() : 1;
  const int32_t heads_per_row = layout_.row_heads() / joint;
  const int32_t head_dim = layout_.head_dim * joint;
  for (int32_t r = 0; r < layout_.n_rows(); ++r) {
    const size_t at = base + r * row_stride;
    const int32_t head = r * heads_per_row;
    // Levels and scales chosen under the queries' (outputs') metric (kv_transform.h).
    const float* k_metric = metric_rounding ? key_transform_.key_metric(layer, head) : nullptr;
    const float* v_metric =
        metric_rounding && joint > 1 ? key_transform_.value_metric(layer, head) : nullptr;
    if (k_metric != nullptr) {
      quantize_q4_0_under_metric(k + r * n, k_[layer].as<uint8_t>() + at, n, head_dim, k_metric,
                                 key_transform_.key_factor(layer, head));
    } else {
      store_row(k + r * n, k_[layer].as<uint8_t>() + at, n);
    }
    if (v_metric != nullptr) {
      quantize_q4_0_under_metric(v + r * n, v_[layer].as<uint8_t>() + at, n, head_dim, v_metric,
                                 key_transform_.value_factor(layer, head));
    } else {
      store_row(v + r * n, v_[layer].as<uint8_t>() + at, n);
    }
  }
}

void KvCache::set_key_transform(KeyTransform transform) {
  QUANTA_ASSERT(!transform.active() ||
                (transform.head_dim() == layout_.head_dim * transform.joint_heads() &&
                 (transform.joint_heads() == 1 || transform.joint_heads() == layout_.row_heads())));
  key_transform_ = std::move(transform);
  key_scratch_.resize(key_transform_.active() ? 2 * layout_.row_elems() : 0);
}

void KvCache::copy_block(int32_t src, int32_t dst) {
  QUANTA_ASSERT(src >= 0 && src < layout_.n_blocks && dst >= 0 && dst < layout_.n_blocks);
  const size_t block_bytes = layout_.block_bytes();
  for (int32_t l = 0; l < layout_.n_layer; ++l) {
    std::memcpy(k_[l].data() + dst * block_bytes, k_[l].data() + src * block_bytes, block_bytes);
    std::memcpy(v_[l].data() + dst * block_bytes, v_[l].data() + src * block_bytes, block_bytes);
  }
}

ops::PagedKvView KvCache::view(int32_t layer, const BlockTable& table) const {
  ops::PagedKvView view;
  view.k = k_[layer].data();
  view.v = v_[layer].data();
  view.type = layout_.type;
  view.n_kv_head = layout_.n_kv_head;
  view.head_dim = layout_.head_dim;
  view.row_heads = layout_.row_heads();
  view.row_bytes = layout_.row_bytes();
  view.block_size = layout_.block_size;
  view.block_ids = table.blocks().data();
  return view;
}

ops::PagedKvView KvCache::attention_view(int32_t layer, const BlockTable& table) const {
  ops::PagedKvView view = this->view(layer, table);
  if (key_transform_.active() && key_transform_.joint_heads() > 1) {
    view.n_kv_head = layout_.n_rows();
    view.head_dim = key_transform_.head_dim();
    view.row_heads = 1;
  }
  return view;
}

}  // namespace quanta::kv
