// ArgParser implementation.
#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/error.h"

namespace quanta::cli {

ArgParser::ArgParser(std::string usage_line, std::string summary)
    : usage_line_(std::move(usage_line)), summary_(std::move(summary)) {}

void ArgParser::add(const char* names, const char* value_name, Kind kind, void* out,
                    const char* help) {
  Option opt{"", "", value_name ? value_name : "", help, kind, out};
  std::string all = names;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find(',', start);
    if (end == std::string::npos) end = all.size();
    std::string name = all.substr(start, end - start);
    name.erase(0, name.find_first_not_of(' '));
    (name.rfind("--", 0) == 0 ? opt.long_name : opt.short_name) = name;
    start = end + 1;
  }
  options_.push_back(opt);
}

void ArgParser::add_string(const char* n, const char* v, std::string* out, const char* h) {
  add(n, v, Kind::kString, out, h);
}
void ArgParser::add_int(const char* n, const char* v, int32_t* out, const char* h) {
  add(n, v, Kind::kInt, out, h);
}
void ArgParser::add_uint64(const char* n, const char* v, uint64_t* out, const char* h) {
  add(n, v, Kind::kUint64, out, h);
}
void ArgParser::add_float(const char* n, const char* v, float* out, const char* h) {
  add(n, v, Kind::kFloat, out, h);
}
void ArgParser::add_flag(const char* n, bool* out, const char* h) {
  add(n, nullptr, Kind::kFlag, out, h);
}

void ArgParser::require(const char* long_name) {
  Option* opt = find(long_name);
  if (opt != nullptr) opt->required = true;
}

ArgParser::Option* ArgParser::find(const std::string& name) {
  for (Option& opt : options_) {
    if (name == opt.long_name || (!opt.short_name.empty() && name == opt.short_name)) return &opt;
  }
  return nullptr;
}

bool ArgParser::was_set(const char* long_name) const {
  for (const Option& opt : options_) {
    if (opt.long_name == long_name) return opt.set;
  }
  return false;
}

void ArgParser::assign(Option& opt, const std::string& value) {
  const char* s = value.c_str();
  char* end = nullptr;
  errno = 0;
  switch (opt.kind) {
    case Kind::kString:
      *static_cast<std::string*>(opt.out) = value;
      return;
    case Kind::kInt: {
      const long long v = std::strtoll(s, &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX) break;
      *static_cast<int32_t*>(opt.out) = static_cast<int32_t>(v);
      return;
    }
    case Kind::kUint64: {
      const unsigned long long v = std::strtoull(s, &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || value[0] == '-') break;
      *static_cast<uint64_t*>(opt.out) = v;
      return;
    }
    case Kind::kFloat: {
      const float v = std::strtof(s, &end);
      if (value.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) break;
      *static_cast<float*>(opt.out) = v;
      return;
    }
    case Kind::kFlag:
      return;
  }
  fail("invalid value '%s' for %s (expected %s)", value.c_str(), opt.long_name.c_str(),
       opt.kind == Kind::kFloat ? "a number" : "an integer");
}

bool ArgParser::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (std::string_view(argv[i]) == "-h" || std::string_view(argv[i]) == "--help") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    std::string value;
    bool inline_value = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    Option* opt = find(arg);
    if (opt == nullptr) fail("unknown option '%s' (see --help)", arg.c_str());
    opt->set = true;
    if (opt->kind == Kind::kFlag) {
      if (inline_value) fail("option %s takes no value", opt->long_name.c_str());
      *static_cast<bool*>(opt->out) = true;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) fail("option %s needs a value (%s)", arg.c_str(), opt->value_name.c_str());
      value = argv[++i];
    }
    assign(*opt, value);
  }
  for (const Option& opt : options_) {
    if (opt.required && !opt.set) fail("missing required option %s (see --help)", opt.long_name.c_str());
  }
  return true;
}

std::string ArgParser::help() const {
  std::string out = "usage: " + usage_line_ + "\n\n" + summary_ + "\n\noptions:\n";
  for (const Option& opt : options_) {
    std::string names = opt.short_name.empty() ? "    " : opt.short_name + ", ";
    names += opt.long_name;
    if (!opt.value_name.empty()) names += " " + opt.value_name;
    out += strformat("  %-28s %s%s\n", names.c_str(), opt.help.c_str(),
                     opt.required ? " (required)" : "");
  }
  out += strformat("  %-28s %s\n", "-h, --help", "show this help");
  return out;
}

}  // namespace quanta::cli
