// KvCache: per-layer block pools of F32 K/V rows.
#include "kv/kv_cache.h"

#include "core/error.h"

namespace quanta::kv {

uint64_t KvLayout::total_bytes() const {
  return 2ull * n_layer * static_cast<uint64_t>(n_blocks) * block_size * row_floats() *
         sizeof(float);
}

KvCache::KvCache(const KvLayout& layout) : layout_(layout), pool_(layout.n_blocks) {
  QUANTA_ASSERT(layout.n_layer > 0 && layout.n_blocks > 0 && layout.block_size > 0);
  const size_t bytes = static_cast<size_t>(layout.n_blocks) * layout.block_size *
                       layout.row_floats() * sizeof(float);
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
  return (block * layout_.block_size + pos % layout_.block_size) * layout_.row_floats();
}

float* KvCache::k_row(int32_t layer, const BlockTable& table, int32_t pos) {
  return k_[layer].as<float>() + row_offset(table, pos);
}

float* KvCache::v_row(int32_t layer, const BlockTable& table, int32_t pos) {
  return v_[layer].as<float>() + row_offset(table, pos);
}

ops::PagedKvView KvCache::view(int32_t layer, const BlockTable& table) const {
  ops::PagedKvView view;
  view.k = k_[layer].as<float>();
  view.v = v_[layer].as<float>();
  view.row_stride = layout_.row_floats();
  view.block_size = layout_.block_size;
  view.block_ids = table.blocks().data();
  return view;
}

}  // namespace quanta::kv
