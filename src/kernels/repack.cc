// Weight repacking between GGUF and the kernel layouts (see repack.h): plain byte moves,
// group by group through a small buffer, so a row can be rewritten in place.
#include "kernels/repack.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "quant/blocks.h"

namespace quanta::kernels {
namespace {

constexpr size_t kQ4Block = sizeof(BlockQ4_0);  // 18: f16 d, then 16 bytes of nibbles
constexpr size_t kQ8Block = sizeof(BlockQ8_0);  // 34: f16 d, then 32 int8 quants
static_assert(8 * kQ4Block == kQ4_0x8GroupBytes, "a group keeps its GGUF size");
static_assert(8 * kQ8Block == kQ8_0x8GroupBytes, "a group keeps its GGUF size");

// A transposed-group layout: blocks of `block` bytes (f16 d, then `dwords` dwords of quants);
// a group of 8 holds vector j (j < dwords) of 32 bytes = dword j of blocks 0..7, then the
// 8 scales.
struct GroupSpec {
  size_t block;
  int dwords;
  size_t group() const { return 8 * block; }
};

GroupSpec spec_of(WeightLayout layout) {
  QUANTA_ASSERT(layout == WeightLayout::kQ4_0x8 || layout == WeightLayout::kQ8_0x8);
  return layout == WeightLayout::kQ4_0x8 ? GroupSpec{kQ4Block, 4} : GroupSpec{kQ8Block, 8};
}

// One group of 8 blocks, GGUF -> packed (to_packed) or back.
void convert_group(const GroupSpec& spec, const uint8_t* src, uint8_t* dst, bool to_packed) {
  uint8_t tmp[kQ8_0x8GroupBytes];
  const size_t scales = 32 * static_cast<size_t>(spec.dwords);
  for (int l = 0; l < 8; ++l) {
    const size_t block = l * spec.block;
    const size_t scale = scales + 2 * l;
    for (int j = 0; j < spec.dwords; ++j) {
      const size_t packed = 32 * j + 4 * l;
      const size_t gguf = block + 2 + 4 * j;
      if (to_packed) {
        std::memcpy(tmp + packed, src + gguf, 4);
      } else {
        std::memcpy(tmp + gguf, src + packed, 4);
      }
    }
    if (to_packed) {
      std::memcpy(tmp + scale, src + block, 2);
    } else {
      std::memcpy(tmp + block, src + scale, 2);
    }
  }
  std::memcpy(dst, tmp, spec.group());
}

// The 2-byte slot of lane i (row 16p + i) within value j's 32 bytes of a panel.
int panel_slot(WeightLayout layout, int i) {
  if (layout == WeightLayout::kF16x16) return i;
  const int quarter = i / 4;  // kBF16x16: lanes 4..7 and 8..11 trade places
  return quarter == 1 ? i + 4 : quarter == 2 ? i - 4 : i;
}

// Panel by panel (through a panel-sized buffer, so dst may equal src): 16 GGUF rows ->
// their panel (to_packed) or back, value j of the 16 rows at a time.
void convert_panels(WeightLayout layout, int64_t k, const uint8_t* src, uint8_t* dst,
                    int64_t n_rows, bool to_packed) {
  const size_t panel_values = static_cast<size_t>(kPanelRows * k);
  std::vector<uint16_t> in(panel_values), out(panel_values);
  size_t slot[kPanelRows];
  for (int i = 0; i < kPanelRows; ++i) slot[i] = static_cast<size_t>(panel_slot(layout, i));
  for (int64_t p = 0; p < n_rows / kPanelRows; ++p) {
    std::memcpy(in.data(), src + p * panel_values * 2, panel_values * 2);
    for (int i = 0; i < kPanelRows; ++i) {
      const uint16_t* from = in.data() + (to_packed ? i * k : slot[i]);
      uint16_t* to = out.data() + (to_packed ? slot[i] : i * k);
      const size_t from_step = to_packed ? 1 : kPanelRows, to_step = to_packed ? kPanelRows : 1;
      for (int64_t j = 0; j < k; ++j) to[j * to_step] = from[j * from_step];
    }
    std::memcpy(dst + p * panel_values * 2, out.data(), panel_values * 2);
  }
}

void convert_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                  int64_t n_rows, bool to_packed) {
  QUANTA_ASSERT(layout_fits(layout, type, k, n_rows));
  const size_t row_bytes = row_size(type, k);
  if (layout == WeightLayout::kGguf) {
    if (dst != src) std::memmove(dst, src, row_bytes * static_cast<size_t>(n_rows));
    return;
  }
  if (is_panel_layout(layout)) return convert_panels(layout, k, src, dst, n_rows, to_packed);
  const GroupSpec spec = spec_of(layout);
  const size_t gb = spec.group();
  const int64_t groups = k / 256;
  const size_t tail = row_bytes - static_cast<size_t>(groups) * gb;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* s = src + static_cast<size_t>(r) * row_bytes;
    uint8_t* d = dst + static_cast<size_t>(r) * row_bytes;
    for (int64_t g = 0; g < groups; ++g) convert_group(spec, s + g * gb, d + g * gb, to_packed);
    if (d != s && tail > 0) std::memcpy(d + row_bytes - tail, s + row_bytes - tail, tail);
  }
}

}  // namespace

bool is_panel_layout(WeightLayout layout) {
  return layout == WeightLayout::kF16x16 || layout == WeightLayout::kBF16x16;
}

GgmlType layout_type(WeightLayout layout, GgmlType type) {
  switch (layout) {
    case WeightLayout::kQ4_0x8:
      return GgmlType::Q4_0;
    case WeightLayout::kQ8_0x8:
      return GgmlType::Q8_0;
    case WeightLayout::kF16x16:
      return GgmlType::F16;
    case WeightLayout::kBF16x16:
      return GgmlType::BF16;
    case WeightLayout::kGguf:
      break;
  }
  return type;
}

bool layout_fits(WeightLayout layout, GgmlType type, int64_t k, int64_t n_rows) {
  if (n_rows < 0) return false;
  switch (layout) {
    case WeightLayout::kGguf:
      return true;
    case WeightLayout::kQ4_0x8:
      return type == GgmlType::Q4_0 && k > 0 && k % 32 == 0;
    case WeightLayout::kQ8_0x8:
      return type == GgmlType::Q8_0 && k > 0 && k % 32 == 0;
    case WeightLayout::kF16x16:
    case WeightLayout::kBF16x16:
      return type == layout_type(layout, type) && k > 0 && k <= kPanelMaxK &&
             n_rows % kPanelRows == 0;
  }
  return false;
}

void repack_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                 int64_t n_rows) {
  convert_rows(layout, type, k, src, dst, n_rows, /*to_packed=*/true);
}

void unpack_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                 int64_t n_rows) {
  convert_rows(layout, type, k, src, dst, n_rows, /*to_packed=*/false);
}

void dequantize_packed_row(WeightLayout layout, GgmlType type, const uint8_t* src, float* out,
                           int64_t k) {
  const ToFloatFn to_float = type_traits(type).to_float;
  if (layout == WeightLayout::kGguf) return to_float(src, out, k);
  QUANTA_ASSERT(!is_panel_layout(layout) && layout_fits(layout, type, k, 1));
  // Group by group through a stack buffer: no row-sized allocation.
  const GroupSpec spec = spec_of(layout);
  const int64_t groups = k / 256;
  uint8_t gguf[kQ8_0x8GroupBytes];
  for (int64_t g = 0; g < groups; ++g) {
    convert_group(spec, src + g * spec.group(), gguf, /*to_packed=*/false);
    to_float(gguf, out + 256 * g, 256);
  }
  if (k > 256 * groups) to_float(src + groups * spec.group(), out + 256 * groups, k - 256 * groups);
}

void extract_gguf_row(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* data, int64_t r,
                      uint8_t* dst) {
  const size_t row_bytes = row_size(type, k);
  if (!is_panel_layout(layout)) {
    return unpack_rows(layout, type, k, data + static_cast<size_t>(r) * row_bytes, dst, 1);
  }
  QUANTA_ASSERT(type == layout_type(layout, type));
  const uint8_t* panel = data + static_cast<size_t>(r / kPanelRows) * kPanelRows * row_bytes;
  const size_t slot = 2 * static_cast<size_t>(panel_slot(layout, static_cast<int>(r % kPanelRows)));
  for (int64_t j = 0; j < k; ++j) std::memcpy(dst + 2 * j, panel + 32 * j + slot, 2);
}

void dequantize_layout_row(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* data,
                           int64_t r, float* out) {
  if (!is_panel_layout(layout)) {
    return dequantize_packed_row(layout, type, data + static_cast<size_t>(r) * row_size(type, k),
                                 out, k);
  }
  std::vector<uint8_t> row(row_size(type, k));
  extract_gguf_row(layout, type, k, data, r, row.data());
  type_traits(type).to_float(row.data(), out, k);
}

}  // namespace quanta::kernels
