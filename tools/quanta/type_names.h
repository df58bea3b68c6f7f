// Parsing tensor type names given on the command line ("q4_0", "Q4_K", "f16").
#pragma once

#include <string>

#include "quant/types.h"

namespace quanta::cli {

// A supported weight type by its ggml name, case-insensitive; throws quanta::Error listing
// the supported names otherwise.
GgmlType parse_weight_type(const std::string& name);

}  // namespace quanta::cli
