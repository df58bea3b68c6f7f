// Type-name parsing for command-line flags.
#include "type_names.h"

#include <strings.h>

#include "core/error.h"

namespace quanta::cli {

GgmlType parse_weight_type(const std::string& name) {
  std::string known;
  for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
    const auto type = static_cast<GgmlType>(code);
    if (!is_supported_type(type)) continue;
    if (strcasecmp(name.c_str(), type_name(type)) == 0) return type;
    known += (known.empty() ? "" : ", ") + std::string(type_name(type));
  }
  fail("unknown or unsupported tensor type '%s' (supported: %s)", name.c_str(), known.c_str());
}

}  // namespace quanta::cli
