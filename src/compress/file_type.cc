// The table of quantization targets (llama.cpp file types) and name parsing.
#include "compress/file_type.h"

#include <strings.h>

#include "core/error.h"

namespace quanta::compress {

const std::vector<FileTypeInfo>& file_types() {
  static const std::vector<FileTypeInfo> kTypes = {
      {FileType::kQ4_0, "Q4_0", GgmlType::Q4_0, "4.5 bpw, 32-value blocks, one f16 scale"},
      {FileType::kQ4_K_S, "Q4_K_S", GgmlType::Q4_K, "Q4_K, a few tensors Q5_K"},
      {FileType::kQ4_K_M, "Q4_K_M", GgmlType::Q4_K, "Q4_K, half of attn_v/ffn_down Q6_K"},
      {FileType::kQ5_K_S, "Q5_K_S", GgmlType::Q5_K, "Q5_K throughout"},
      {FileType::kQ5_K_M, "Q5_K_M", GgmlType::Q5_K, "Q5_K, half of attn_v/ffn_down Q6_K"},
      {FileType::kQ6_K, "Q6_K", GgmlType::Q6_K, "6.56 bpw K-quant"},
      {FileType::kQ8_0, "Q8_0", GgmlType::Q8_0, "8.5 bpw, nearly lossless"},
      {FileType::kF16, "F16", GgmlType::F16, "16-bit floats"},
      {FileType::kBF16, "BF16", GgmlType::BF16, "bfloat16"},
      {FileType::kAllF32, "F32", GgmlType::F32, "32-bit floats"},
  };
  return kTypes;
}

FileType parse_file_type(const std::string& name) {
  if (strcasecmp(name.c_str(), "Q4_K") == 0) return FileType::kQ4_K_M;
  if (strcasecmp(name.c_str(), "Q5_K") == 0) return FileType::kQ5_K_M;
  std::string known;
  for (const FileTypeInfo& t : file_types()) {
    if (strcasecmp(name.c_str(), t.name) == 0) return t.ftype;
    known += std::string(known.empty() ? "" : " ") + t.name;
  }
  fail("unknown quantization type '%s' (known: %s; Q4_K and Q5_K mean Q4_K_M and Q5_K_M)",
       name.c_str(), known.c_str());
}

const FileTypeInfo& file_type_info(FileType ftype) {
  for (const FileTypeInfo& t : file_types()) {
    if (t.ftype == ftype) return t;
  }
  fail("unsupported file type %u", static_cast<unsigned>(ftype));
}

bool is_quantized_file_type(FileType ftype) {
  return type_traits(file_type_info(ftype).base_type).is_quantized;
}

}  // namespace quanta::compress
