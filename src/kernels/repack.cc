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
static_assert(sizeof(BlockQ4_K) == kQ4_KBlockBytes, "a super-block keeps its GGUF size");
static_assert(sizeof(BlockQ6_K) == kQ6_KBlockBytes, "a super-block keeps its GGUF size");

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

// The 2-byte index of value j of lane i (row 16p + i) within its panel.
size_t panel_index(WeightLayout layout, int i, int64_t j) {
  const auto jj = static_cast<size_t>(j);
  if (layout == WeightLayout::kBF16x16Pairs) return 32 * (jj / 2) + 2 * i + jj % 2;
  if (layout == WeightLayout::kF16x16) return 16 * jj + i;
  const int quarter = i / 4;  // kBF16x16: lanes 4..7 and 8..11 trade places
  return 16 * jj + (quarter == 1 ? i + 4 : quarter == 2 ? i - 4 : i);
}

// Panel by panel (through a panel-sized buffer, so dst may equal src): 16 GGUF rows ->
// their panel (to_packed) or back.
void convert_panels(WeightLayout layout, int64_t k, const uint8_t* src, uint8_t* dst,
                    int64_t n_rows, bool to_packed) {
  const size_t panel_values = static_cast<size_t>(kPanelRows * k);
  std::vector<uint16_t> in(panel_values), out(panel_values);
  for (int64_t p = 0; p < n_rows / kPanelRows; ++p) {
    std::memcpy(in.data(), src + p * panel_values * 2, panel_values * 2);
    for (int i = 0; i < kPanelRows; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const size_t gguf = static_cast<size_t>(i * k + j), packed = panel_index(layout, i, j);
        out[to_packed ? packed : gguf] = in[to_packed ? gguf : packed];
      }
    }
    std::memcpy(dst + p * panel_values * 2, out.data(), panel_values * 2);
  }
}

// One Q4_K super-block (144 bytes), GGUF -> kQ4_Kx8 (to_packed) or back; src may equal dst.
void convert_q4_k_block(const uint8_t* src, uint8_t* dst, bool to_packed) {
  constexpr size_t kQs = offsetof(BlockQ4_K, qs), kSc = offsetof(BlockQ4_K, scales);
  uint8_t tmp[kQ4_KBlockBytes] = {};
  uint8_t sc[8], mn[8];
  const uint8_t* from_qs = src + (to_packed ? kQs : 0);
  uint8_t* to_qs = tmp + (to_packed ? 0 : kQs);
  // GGUF byte 32c + i: value i of sub-blocks 2c (low) and 2c+1 (high nibble); packed byte
  // 32 (i % 16 / 4) + 4L + i % 4: values i and i + 16 of sub-block L (i < 16).
  for (int l = 0; l < 8; ++l) {
    for (int i = 0; i < 16; ++i) {
      const int gguf = 32 * (l / 2) + i, shift = 4 * (l % 2);
      const int packed = 32 * (i / 4) + 4 * l + i % 4;
      if (to_packed) {
        to_qs[packed] = static_cast<uint8_t>(((from_qs[gguf] >> shift) & 0x0F) |
                                             ((from_qs[gguf + 16] >> shift) & 0x0F) << 4);
      } else {
        const uint8_t keep = static_cast<uint8_t>(0xF0 >> shift);  // the other sub-block
        to_qs[gguf] =
            static_cast<uint8_t>((to_qs[gguf] & keep) | (from_qs[packed] & 0x0F) << shift);
        to_qs[gguf + 16] =
            static_cast<uint8_t>((to_qs[gguf + 16] & keep) | (from_qs[packed] >> 4) << shift);
      }
    }
  }
  const uint8_t* q = src + (to_packed ? kSc : kQ4_KScalesAt);
  for (int j = 0; j < 8; ++j) {
    if (!to_packed) {
      sc[j] = q[j] & 63;
      mn[j] = static_cast<uint8_t>((q[j] >> 6) | (((q[8 + j / 2] >> (4 * (j % 2))) & 0x0F) << 2));
    } else if (j < 4) {
      sc[j] = q[j] & 63;
      mn[j] = q[j + 4] & 63;
    } else {
      sc[j] = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
      mn[j] = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
  }
  uint8_t* out = tmp + (to_packed ? kQ4_KScalesAt : kSc);
  for (int j = 0; j < 8; ++j) {
    if (to_packed) {
      out[j] = static_cast<uint8_t>(sc[j] | (mn[j] & 3) << 6);
      out[8 + j / 2] |= static_cast<uint8_t>((mn[j] >> 2) << (4 * (j % 2)));
    } else if (j < 4) {
      out[j] |= sc[j];
      out[j + 4] |= mn[j];
    } else {
      out[j + 4] = static_cast<uint8_t>((sc[j] & 0x0F) | (mn[j] & 0x0F) << 4);
      out[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
    }
  }
  // d and dmin (two f16) keep their bytes: [0, 4) in GGUF, [128, 132) packed.
  std::memcpy(tmp + (to_packed ? kQ4_KScalesAt - 4 : 0), src + (to_packed ? 0 : kQ4_KScalesAt - 4),
              4);
  std::memcpy(dst, tmp, sizeof tmp);
}

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void store64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}

// One Q6_K super-block (210 bytes), GGUF -> kQ6_Kx8 (to_packed) or back; src may equal dst.
// Scales and d keep their places. Eight levels at a time (bytes of a uint64): lv holds a
// half's 128 levels in value order; bytes 8r..8r+7 of V(2p + s) are the levels of values
// 32 (2p + r % 2) + 16 (r / 2) + 8 s + 0..7 (repack.h).
void convert_q6_k_block(const uint8_t* src, uint8_t* dst, bool to_packed) {
  constexpr uint64_t k03 = 0x0303030303030303u, k0f = 0x0f0f0f0f0f0f0f0fu;
  constexpr uint64_t k3f = 0x3f3f3f3f3f3f3f3fu;
  uint8_t tmp[kQ6_KBlockBytes];
  std::memcpy(tmp, src, sizeof tmp);
  const auto run = [](int m, int r) {
    return 32 * (2 * (m / 2) + r % 2) + 16 * (r / 2) + 8 * (m % 2);
  };
  for (int h = 0; h < 2; ++h) {
    uint8_t lv[128];
    const uint8_t* ql = src + 64 * h;
    const uint8_t* qh = src + 128 + 32 * h;
    const uint8_t* pq = src + 96 * h;
    for (int l = 0; l < 32; l += 8) {  // levels of values l, 32 + l, 64 + l, 96 + l (+0..7)
      if (to_packed) {
        const uint64_t lo0 = load64(ql + l), lo1 = load64(ql + 32 + l), hi = load64(qh + l);
        store64(lv + l, (lo0 & k0f) | (hi & k03) << 4);
        store64(lv + 32 + l, (lo1 & k0f) | (hi >> 2 & k03) << 4);
        store64(lv + 64 + l, (lo0 >> 4 & k0f) | (hi >> 4 & k03) << 4);
        store64(lv + 96 + l, (lo1 >> 4 & k0f) | (hi >> 6 & k03) << 4);
      } else {
        const uint64_t x = load64(pq + l), y = load64(pq + 32 + l), z = load64(pq + 64 + l);
        const int r = l / 8;
        store64(lv + run(0, r), x & k3f);
        store64(lv + run(1, r), y & k3f);
        store64(lv + run(2, r), z & k3f);
        store64(lv + run(3, r), (x >> 6 & k03) | (y >> 6 & k03) << 2 | (z >> 6 & k03) << 4);
      }
    }
    for (int l = 0; l < 32; l += 8) {
      if (to_packed) {
        const int r = l / 8;
        const uint64_t v3 = load64(lv + run(3, r));
        store64(tmp + 96 * h + l, load64(lv + run(0, r)) | (v3 & k03) << 6);
        store64(tmp + 96 * h + 32 + l, load64(lv + run(1, r)) | (v3 >> 2 & k03) << 6);
        store64(tmp + 96 * h + 64 + l, load64(lv + run(2, r)) | (v3 >> 4 & k03) << 6);
      } else {
        const uint64_t v0 = load64(lv + l), v1 = load64(lv + 32 + l);
        const uint64_t v2 = load64(lv + 64 + l), v3 = load64(lv + 96 + l);
        store64(tmp + 64 * h + l, (v0 & k0f) | (v2 & k0f) << 4);
        store64(tmp + 64 * h + 32 + l, (v1 & k0f) | (v3 & k0f) << 4);
        store64(tmp + 128 + 32 * h + l, (v0 >> 4 & k03) | (v1 >> 4 & k03) << 2 |
                                            (v2 >> 4 & k03) << 4 | (v3 >> 4 & k03) << 6);
      }
    }
  }
  std::memcpy(dst, tmp, sizeof tmp);
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
  if (layout == WeightLayout::kQ4_Kx8) {  // super-block by super-block, rows contiguous
    const int64_t blocks = n_rows * (k / 256);
    for (int64_t b = 0; b < blocks; ++b) {
      convert_q4_k_block(src + b * kQ4_KBlockBytes, dst + b * kQ4_KBlockBytes, to_packed);
    }
    return;
  }
  if (layout == WeightLayout::kQ6_Kx8) {  // super-block by super-block, rows contiguous
    const int64_t blocks = n_rows * (k / 256);
    for (int64_t b = 0; b < blocks; ++b) {
      convert_q6_k_block(src + b * kQ6_KBlockBytes, dst + b * kQ6_KBlockBytes, to_packed);
    }
    return;
  }
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
  return layout == WeightLayout::kF16x16 || layout == WeightLayout::kBF16x16 ||
         layout == WeightLayout::kBF16x16Pairs;
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
    case WeightLayout::kBF16x16Pairs:
      return GgmlType::BF16;
    case WeightLayout::kQ4_Kx8:
      return GgmlType::Q4_K;
    case WeightLayout::kQ6_Kx8:
      return GgmlType::Q6_K;
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
    case WeightLayout::kQ4_Kx8:
      return type == GgmlType::Q4_K && k > 0 && k % 256 == 0;
    case WeightLayout::kQ6_Kx8:
      return type == GgmlType::Q6_K && k > 0 && k % 256 == 0;
    case WeightLayout::kF16x16:
    case WeightLayout::kBF16x16:
      return type == layout_type(layout, type) && k > 0 && k <= kPanelMaxK &&
             n_rows % kPanelRows == 0;
    case WeightLayout::kBF16x16Pairs:
      return type == GgmlType::BF16 && k > 0 && k % 32 == 0 && k <= kPanelMaxK &&
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
  if (layout == WeightLayout::kQ4_Kx8) {
    uint8_t block[kQ4_KBlockBytes];
    for (int64_t b = 0; b < k / 256; ++b) {
      convert_q4_k_block(src + b * kQ4_KBlockBytes, block, /*to_packed=*/false);
      to_float(block, out + 256 * b, 256);
    }
    return;
  }
  if (layout == WeightLayout::kQ6_Kx8) {
    uint8_t block[kQ6_KBlockBytes];
    for (int64_t b = 0; b < k / 256; ++b) {
      convert_q6_k_block(src + b * kQ6_KBlockBytes, block, /*to_packed=*/false);
      to_float(block, out + 256 * b, 256);
    }
    return;
  }
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
  const int lane = static_cast<int>(r % kPanelRows);
  for (int64_t j = 0; j < k; ++j)
    std::memcpy(dst + 2 * j, panel + 2 * panel_index(layout, lane, j), 2);
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
