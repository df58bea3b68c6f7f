// KvCache: per-layer block pools of F32 or F16 K/V rows.
#include "kv/kv_cache.h"

#include <cstring>

#include "core/error.h"
#include "core/fp16.h"

namespace quanta::kv {

uint64_t KvLayout::total_bytes() const {
  return 2ull * n_layer * static_cast<uint64_t>(n_blocks) * block_size * row_elems() * elem_bytes();
}

void check_kv_type(GgmlType type) {
  if (type != GgmlType::F32 && type != GgmlType::F16) {
    fail("KV cache type must be f32 or f16 (got %s)", type_name(type));
  }
}

KvCache::KvCache(const KvLayout& layout) : layout_(layout), pool_(layout.n_blocks) {
  QUANTA_ASSERT(layout.n_layer > 0 && layout.n_blocks > 0 && layout.block_size > 0);
  check_kv_type(layout.type);
  const size_t bytes = static_cast<size_t>(layout.n_blocks) * layout.block_size *
                       layout.row_elems() * layout.elem_bytes();
  k_.reserve(layout.n_layer);
  v_.reserve(layout.n_layer);
  for (int32_t l = 0; l < layout.n_layer; ++l) {
    k_.emplace_back(bytes);
    v_.emplace_back(bytes);
  }
}

int64_t KvCache::row_offset(const BlockTable& table, int32_t pos) const {
  QUANTA_ASSERT(pos >= 0 && pos < table.n_tokens());
  const int64_t block = table.blocks()[pos / layout_.block_size];
  return (block * layout_.n_kv_head * layout_.block_size + pos % layout_.block_size) *
         layout_.head_dim;
}

void KvCache::store(int32_t layer, const BlockTable& table, int32_t pos, const float* k,
                    const float* v) {
  const int64_t base = row_offset(table, pos);
  const int64_t head_stride = static_cast<int64_t>(layout_.block_size) * layout_.head_dim;
  const int32_t d = layout_.head_dim;
  for (int32_t h = 0; h < layout_.n_kv_head; ++h) {
    const int64_t at = base + h * head_stride;
    const float* kh = k + static_cast<int64_t>(h) * d;
    const float* vh = v + static_cast<int64_t>(h) * d;
    if (layout_.type == GgmlType::F32) {
      std::memcpy(k_[layer].as<float>() + at, kh, d * sizeof(float));
      std::memcpy(v_[layer].as<float>() + at, vh, d * sizeof(float));
      continue;
    }
    uint16_t* kd = k_[layer].as<uint16_t>() + at;
    uint16_t* vd = v_[layer].as<uint16_t>() + at;
    for (int32_t i = 0; i < d; ++i) {
      kd[i] = f32_to_f16(kh[i]);
      vd[i] = f32_to_f16(vh[i]);
    }
  }
}

void KvCache::copy_block(int32_t src, int32_t dst) {
  QUANTA_ASSERT(src >= 0 && src < layout_.n_blocks && dst >= 0 && dst < layout_.n_blocks);
  const size_t block_bytes =
      static_cast<size_t>(layout_.block_size) * layout_.row_elems() * layout_.elem_bytes();
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
  view.block_size = layout_.block_size;
  view.block_ids = table.blocks().data();
  return view;
}

}  // namespace quanta::kv
