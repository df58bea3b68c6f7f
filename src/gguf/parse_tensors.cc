// GGUF tensor-info parsing and data-layout checks: names, dims, types, byte sizes, offset
// alignment, ranges inside the file and no overlaps.
#include <algorithm>
#include <cinttypes>
#include <numeric>

#include "core/error.h"
#include "gguf/checks.h"
#include "gguf/parse.h"

namespace quanta::gguf {

namespace {

TensorInfo read_tensor_info(Cursor& cur, uint64_t i, uint64_t alignment) {
  cur.set_context(strformat("tensor info %" PRIu64, i));
  TensorInfo t;
  const std::string_view name = cur.string("name");
  const std::string name_bad = name_problem(name, kMaxTensorNameLength);
  if (!name_bad.empty()) cur.fail("bad tensor name: %s", name_bad.c_str());
  t.name = std::string(name);
  cur.set_context("tensor '" + t.name + "'");

  const uint32_t n_dims = cur.u32("n_dims");
  if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims)) {
    cur.fail("n_dims %u is out of range (must be 1..%d)", n_dims, kMaxDims);
  }
  t.ne.resize(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) t.ne[d] = cur.i64("dimension");
  const uint32_t type = cur.u32("type");
  t.offset = cur.u64("offset");

  const std::string problem = tensor_problem(type, t.ne, &t.n_bytes);
  if (!problem.empty()) cur.fail("%s", problem.c_str());
  t.type = static_cast<GgmlType>(type);
  if (t.offset % alignment != 0) {
    cur.fail("offset 0x%" PRIx64 " is not a multiple of the alignment %" PRIu64, t.offset,
             alignment);
  }
  return t;
}

}  // namespace

void read_tensor_infos(Cursor& cur, uint64_t n_tensors, uint64_t alignment,
                       std::vector<TensorInfo>* tensors,
                       std::unordered_map<std::string, size_t>* index) {
  cur.check_count(n_tensors, kMinTensorInfoBytes, "tensor count");
  tensors->reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t = read_tensor_info(cur, i, alignment);
    auto [it, inserted] = index->emplace(t.name, tensors->size());
    if (!inserted)
      cur.fail("duplicate tensor name (tensor infos %zu and %" PRIu64 ")", it->second, i);
    tensors->push_back(std::move(t));
  }
  cur.set_context("");
}

void check_tensor_ranges(const std::vector<TensorInfo>& tensors, uint64_t data_offset,
                         uint64_t file_size) {
  for (const TensorInfo& t : tensors) {
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(data_offset, t.offset, &begin) ||
        __builtin_add_overflow(begin, t.n_bytes, &end)) {
      fail("tensor '%s': data range (offset 0x%" PRIx64 ", %" PRIu64 " bytes) overflows uint64",
           t.name.c_str(), t.offset, t.n_bytes);
    }
    if (end > file_size) {
      fail("tensor '%s': data range 0x%" PRIx64 "..0x%" PRIx64 " exceeds file size 0x%" PRIx64,
           t.name.c_str(), begin, end, file_size);
    }
  }
  // Sorted by offset, each range must end at or before the next begins.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& a = tensors[order[k - 1]];
    const TensorInfo& b = tensors[order[k]];
    if (a.offset + a.n_bytes > b.offset) {
      fail("tensors '%s' (0x%" PRIx64 "..0x%" PRIx64 ") and '%s' (0x%" PRIx64 "..0x%" PRIx64
           ") overlap",
           a.name.c_str(), data_offset + a.offset, data_offset + a.offset + a.n_bytes,
           b.name.c_str(), data_offset + b.offset, data_offset + b.offset + b.n_bytes);
    }
  }
}

}  // namespace quanta::gguf
