// Quantization targets of `quanta quantize`: llama.cpp's file types (llama_ftype, the value
// of general.file_type), their names as llama-quantize spells them, and the base tensor
// type each one starts from before the per-tensor recipe adjusts it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/types.h"

namespace quanta::compress {

// NOTE: values are llama.cpp's LLAMA_FTYPE_* codes, written to general.file_type; never
// renumber.
enum class FileType : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 7,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kBF16 = 32,
};

struct FileTypeInfo {
  FileType ftype;
  const char* name;         // "Q4_K_M", as llama-quantize prints it
  GgmlType base_type;       // the type most 2-D weights get
  const char* description;  // one line for --help
};

// Every supported target, in llama-quantize's listing order.
const std::vector<FileTypeInfo>& file_types();
// By name, case-insensitive; "Q4_K" and "Q5_K" are aliases of Q4_K_M and Q5_K_M, as in
// llama-quantize. Throws quanta::Error listing the names for an unknown one.
FileType parse_file_type(const std::string& name);
const FileTypeInfo& file_type_info(FileType ftype);
// True for targets whose base type is block-quantized (the recipe applies).
bool is_quantized_file_type(FileType ftype);

}  // namespace quanta::compress
