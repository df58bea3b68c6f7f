// ImportanceMatrix accumulation and its two llama.cpp file layouts.
//
// Legacy .dat (llama-imatrix up to mid-2025, all little-endian):
//   i32 n_entries, then per entry: i32 name_len, name bytes, i32 ncall, i32 nval,
//   f32 values[nval] = mean(x_j^2) * ncall; then i32 chunk count, i32 len, dataset bytes.
// GGUF: general.type = "imatrix", imatrix.datasets (string array), imatrix.chunk_count and
//   imatrix.chunk_size (u32); per weight W tensors "W.in_sum2" F32 [n_cols] (sum of x_j^2)
//   and "W.counts" F32 [1] (rows observed).
#include "compress/imatrix.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace quanta::compress {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_i32(std::ofstream& out, int32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); }

void write_str(std::ofstream& out, const std::string& s) {
  write_i32(out, static_cast<int32_t>(s.size()));
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// Bounds-checked little-endian reads over a whole file image.
class ByteReader {
 public:
  ByteReader(std::string bytes, std::string path) : b_(std::move(bytes)), path_(std::move(path)) {}
  bool at_end() const { return pos_ == b_.size(); }
  int32_t i32(const char* what) {
    int32_t v;
    take(&v, 4, what);
    return v;
  }
  std::string str(int32_t len, const char* what) {
    if (len < 0 || static_cast<size_t>(len) > b_.size() - pos_) bad(what);
    std::string s = b_.substr(pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  void floats(float* dst, int32_t n, const char* what) {
    if (n < 0 || static_cast<size_t>(n) > (b_.size() - pos_) / 4) bad(what);
    take(dst, static_cast<size_t>(n) * 4, what);
  }

 private:
  void take(void* dst, size_t n, const char* what) {
    if (n > b_.size() - pos_) bad(what);
    std::memcpy(dst, b_.data() + pos_, n);
    pos_ += n;
  }
  [[noreturn]] void bad(const char* what) const {
    fail("%s: truncated or malformed imatrix file (reading %s at byte %zu)", path_.c_str(), what,
         pos_);
  }
  std::string b_;
  std::string path_;
  size_t pos_ = 0;
};

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("%s: cannot open imatrix file", path.c_str());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

void ImportanceMatrix::add(const std::string& name, const float* x, int32_t n_rows,
                           int64_t n_cols) {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    it = entries_.emplace(name, ImatrixEntry{}).first;
    it->second.sum_x2.assign(static_cast<size_t>(n_cols), 0.0);
    names_.push_back(name);
  }
  ImatrixEntry& e = it->second;
  if (e.sum_x2.size() != static_cast<size_t>(n_cols)) {
    fail("imatrix: '%s' has %zu columns, now seen with %lld", name.c_str(), e.sum_x2.size(),
         static_cast<long long>(n_cols));
  }
  for (int32_t r = 0; r < n_rows; ++r) {
    const float* row = x + static_cast<int64_t>(r) * n_cols;
    for (int64_t j = 0; j < n_cols; ++j) e.sum_x2[j] += static_cast<double>(row[j]) * row[j];
  }
  for (int64_t j = 0; j < n_cols; ++j) {
    if (!std::isfinite(e.sum_x2[j])) fail("imatrix: non-finite activation in '%s'", name.c_str());
  }
  e.count += n_rows;
  ++e.n_calls;
}

const ImatrixEntry* ImportanceMatrix::find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<float> ImportanceMatrix::importance(const std::string& name) const {
  const ImatrixEntry* e = find(name);
  if (e == nullptr) return {};
  const double count = e->count > 0 ? e->count : 1.0;
  std::vector<float> out(e->sum_x2.size());
  for (size_t j = 0; j < out.size(); ++j) out[j] = static_cast<float>(e->sum_x2[j] / count);
  return out;
}

void ImportanceMatrix::set(const std::string& name, ImatrixEntry entry) {
  if (entries_.find(name) == entries_.end()) names_.push_back(name);
  entries_[name] = std::move(entry);
}

void ImportanceMatrix::save(const std::string& path) const {
  if (ends_with(path, ".gguf")) {
    save_gguf(path);
  } else {
    save_dat(path);
  }
}

void ImportanceMatrix::save_dat(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("%s: cannot write imatrix file", path.c_str());
  write_i32(out, static_cast<int32_t>(names_.size()));
  for (const std::string& name : names_) {
    const ImatrixEntry& e = entries_.at(name);
    write_str(out, name);
    write_i32(out, e.n_calls);
    write_i32(out, static_cast<int32_t>(e.sum_x2.size()));
    // llama.cpp stores the mean scaled by the call count; readers divide by ncall again.
    const double count = e.count > 0 ? e.count : 1.0;
    std::vector<float> values(e.sum_x2.size());
    for (size_t j = 0; j < values.size(); ++j) {
      values[j] = static_cast<float>(e.sum_x2[j] / count * e.n_calls);
    }
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * sizeof(float)));
  }
  write_i32(out, n_chunks);
  write_str(out, dataset);
  if (!out.flush()) fail("%s: write failed", path.c_str());
}

void ImportanceMatrix::save_gguf(const std::string& path) const {
  gguf::Writer w;
  w.set("general.type", gguf::Value::string("imatrix"));
  w.set("imatrix.datasets", gguf::Value::string_array({dataset}));
  w.set("imatrix.chunk_count", gguf::Value::u32(static_cast<uint32_t>(n_chunks)));
  w.set("imatrix.chunk_size", gguf::Value::u32(static_cast<uint32_t>(chunk_size)));
  for (const std::string& name : names_) {
    const ImatrixEntry& e = entries_.at(name);
    std::vector<float> sums(e.sum_x2.begin(), e.sum_x2.end());
    const float count = static_cast<float>(e.count);
    w.add_tensor(name + ".in_sum2", GgmlType::F32, {static_cast<int64_t>(sums.size())},
                 sums.data(), sums.size() * sizeof(float));
    w.add_tensor(name + ".counts", GgmlType::F32, {1}, &count, sizeof count);
  }
  w.write(path);
}

ImportanceMatrix ImportanceMatrix::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("%s: cannot open imatrix file", path.c_str());
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return load_gguf(path);
  return load_dat(path);
}

ImportanceMatrix ImportanceMatrix::load_dat(const std::string& path) {
  ByteReader r(read_whole(path), path);
  ImportanceMatrix m;
  const int32_t n_entries = r.i32("the entry count");
  if (n_entries < 1) fail("%s: imatrix file has no entries (%d)", path.c_str(), n_entries);
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string name = r.str(r.i32("a name length"), "a tensor name");
    ImatrixEntry e;
    e.n_calls = r.i32("a call count");
    const int32_t n_values = r.i32("a value count");
    if (n_values < 1) fail("%s: entry '%s' has %d values", path.c_str(), name.c_str(), n_values);
    std::vector<float> values(static_cast<size_t>(n_values));
    r.floats(values.data(), n_values, "entry values");
    e.sum_x2.assign(values.begin(), values.end());
    e.count = e.n_calls > 0 ? e.n_calls : 1;  // sum_x2 / count = the mean, as llama-quantize
    if (m.find(name) != nullptr) fail("%s: duplicate entry '%s'", path.c_str(), name.c_str());
    m.set(name, std::move(e));
  }
  if (!r.at_end()) {  // newer files end with the chunk count and the dataset name
    m.n_chunks = r.i32("the chunk count");
    m.dataset = r.str(r.i32("the dataset name length"), "the dataset name");
  }
  return m;
}

ImportanceMatrix ImportanceMatrix::load_gguf(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  ImportanceMatrix m;
  m.n_chunks = static_cast<int32_t>(f.get_int("imatrix.chunk_count").value_or(0));
  m.chunk_size = static_cast<int32_t>(f.get_int("imatrix.chunk_size").value_or(0));
  if (const gguf::Array* ds = f.get_array("imatrix.datasets"); ds != nullptr && ds->size() > 0) {
    m.dataset = ds->string_at(0);
  }
  const std::string suffix = ".in_sum2";
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (!ends_with(t.name, suffix)) continue;
    const std::string name = t.name.substr(0, t.name.size() - suffix.size());
    const gguf::TensorInfo* counts = f.find_tensor(name + ".counts");
    if (t.type != GgmlType::F32 || counts == nullptr || counts->type != GgmlType::F32) {
      fail("%s: '%s' needs F32 in_sum2 and counts tensors", path.c_str(), name.c_str());
    }
    if (t.n_rows() != 1 || counts->n_elements() != 1) {
      fail("%s: '%s' holds %lld stacked matrices (MoE experts are not supported)", path.c_str(),
           name.c_str(), static_cast<long long>(t.n_rows()));
    }
    ImatrixEntry e;
    const float* sums = reinterpret_cast<const float*>(f.tensor_data(t));
    e.sum_x2.assign(sums, sums + t.ne[0]);
    float count;
    std::memcpy(&count, f.tensor_data(*counts), sizeof count);
    e.count = count;
    e.n_calls = m.chunk_size > 0 ? static_cast<int32_t>(count / m.chunk_size) : 0;
    m.set(name, std::move(e));
  }
  if (m.size() == 0) fail("%s: no '<name>.in_sum2' tensors: not an imatrix file", path.c_str());
  return m;
}

}  // namespace quanta::compress
