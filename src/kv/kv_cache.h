// KV storage: for every layer, a K pool and a V pool of F32, F16, Q8_0 or Q4_0 rows laid out
// in blocks, [n_blocks, n_rows, block_size, row bytes] (each stored row's positions of a block
// contiguous; one row = one KV head's head_dim values, or, for heads narrower than a quant
// block, row_heads heads' values quantized together), sized once at load time, plus the
// BlockPool that hands blocks to sequences. Attention reads it through ops::PagedKvView.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "kv/block_pool.h"
#include "kv/block_table.h"
#include "kv/kv_transform.h"
#include "ops/attention.h"
#include "quant/types.h"

namespace quanta::kv {

struct KvLayout {
  int32_t n_layer = 0;
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;  // tokens per block
  int32_t n_blocks = 0;
  // Row type: F32, F16, Q8_0 or Q4_0. A quantized row is whole 32-value blocks: one head's
  // head_dim values when head_dim % 32 == 0, else row_heads() consecutive heads' values
  // (head_dim 8: 4 heads, one block per row; needs n_kv_head * head_dim % 32 == 0).
  GgmlType type = GgmlType::F32;

  // Floats of one token's K (or V) for all KV heads, as the model produces them.
  int64_t row_elems() const { return static_cast<int64_t>(n_kv_head) * head_dim; }
  // KV heads per stored row (ops::kv_row_heads): 1 unless quantized heads are packed.
  int32_t row_heads() const { return ops::kv_row_heads(type, head_dim); }
  // Stored rows per token: n_kv_head / row_heads().
  int32_t n_rows() const { return n_kv_head / row_heads(); }
  // Bytes of one stored row: row_heads() * head_dim values in `type`.
  size_t row_bytes() const { return row_size(type, static_cast<int64_t>(row_heads()) * head_dim); }
  // Bytes of one block of one layer's K (or V) pool: n_rows() * block_size rows.
  size_t block_bytes() const {
    return static_cast<size_t>(n_rows()) * static_cast<size_t>(block_size) * row_bytes();
  }
  // Bytes of K + V for all layers and blocks.
  uint64_t total_bytes() const;
};

// Throws quanta::Error unless `type` can be a KV cache type (F32, F16, Q8_0, Q4_0).
void check_kv_type(GgmlType type);
// Also throws when a token's K (or V) row, n_kv_head * head_dim values, is not a whole number
// of the type's blocks (32 values for Q8_0/Q4_0), or either count is not positive.
void check_kv_type(GgmlType type, int32_t head_dim, int32_t n_kv_head);
// "f32", "f16", "q8_0" or "q4_0" (case-insensitive) -> the type; throws quanta::Error
// naming `flag` otherwise.
GgmlType parse_kv_type(const std::string& name, const char* flag = "--kv-type");
// The accepted names, for help texts: "f32, f16, q8_0 or q4_0".
const char* kv_type_choices();

class KvCache {
 public:
  explicit KvCache(const KvLayout& layout);

  const KvLayout& layout() const { return layout_; }
  BlockPool& pool() { return pool_; }
  // A table for a new sequence of at most max_tokens tokens.
  BlockTable new_table(int32_t max_tokens) const {
    return BlockTable(layout_.block_size, max_tokens);
  }

  // Writes one token's K and V rows ([n_kv_head, head_dim] floats each) of `layer` for
  // position `pos` of the sequence described by `table`, converting each stored row (one
  // head's values, or row_heads() heads' for packed rows) to the cache type (F16: round to
  // nearest even; Q8_0/Q4_0: the reference row quantizer).
  // With a key transform set, k is stored in its transformed form (KeyTransform::apply_key),
  // and v too when it has values (apply_value). A Q4_0 cache with a full-matrix transform
  // rounds keys under the key metric (quantize_q4_0_under_metric), and with joint heads values
  // under the value metric too.
  void store(int32_t layer, const BlockTable& table, int32_t pos, const float* k, const float* v);
  // The transform applied to keys at store (the identity by default); queries attending to
  // this cache go through key_transform().apply_query. Set it before storing anything. A
  // joint transform must join exactly the heads of one stored row (joint_heads() ==
  // layout().row_heads()).
  void set_key_transform(KeyTransform transform);
  const KeyTransform& key_transform() const { return key_transform_; }
  // The stored rows as the layout describes them (KV heads of head_dim values).
  ops::PagedKvView view(int32_t layer, const BlockTable& table) const;
  // What attention reads: view(), or with a joint key transform (KeyTransform::joint_heads()
  // == row_heads()) each stored row as one KV head of row_heads() * head_dim values.
  ops::PagedKvView attention_view(int32_t layer, const BlockTable& table) const;
  // Copies every layer's K and V rows of block `src` into block `dst` (copy-on-write of a
  // shared partial block; see BlockPool::pending_copies).
  void copy_block(int32_t src, int32_t dst);

 private:
  // Byte offset of position pos's stored row 0; row r is r * block_size * row_bytes further.
  size_t row_offset(const BlockTable& table, int32_t pos) const;
  // Converts n floats (one stored row) to the cache type.
  void store_row(const float* src, uint8_t* dst, int64_t n) const;

  KvLayout layout_;
  BlockPool pool_;
  std::vector<AlignedBuffer> k_;  // [n_layer] pools
  std::vector<AlignedBuffer> v_;
  KeyTransform key_transform_;
  std::vector<float> key_scratch_;  // [2, row_elems] one token's transformed keys, values
  std::vector<float> ones_;  // [row_heads * head_dim] equal importances (Q4_0 scale search)
};

}  // namespace quanta::kv
