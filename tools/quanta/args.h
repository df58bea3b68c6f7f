// A small declarative command-line parser: typed flags with long and short names, generated
// --help text, and quanta::Error for unknown flags, missing values or malformed numbers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quanta::cli {

class ArgParser {
 public:
  ArgParser(std::string usage_line, std::string summary);

  // `names` is "-m, --model" or "--seed"; `value_name` documents the argument ("PATH").
  void add_string(const char* names, const char* value_name, std::string* out, const char* help);
  void add_int(const char* names, const char* value_name, int32_t* out, const char* help);
  void add_uint64(const char* names, const char* value_name, uint64_t* out, const char* help);
  void add_float(const char* names, const char* value_name, float* out, const char* help);
  void add_flag(const char* names, bool* out, const char* help);
  // A flag that must be given.
  void require(const char* long_name);

  // Parses argv[first..argc). Returns false after printing help (for -h/--help); throws
  // quanta::Error for bad input.
  bool parse(int argc, char** argv, int first = 2);
  std::string help() const;
  bool was_set(const char* long_name) const;

 private:
  enum class Kind { kString, kInt, kUint64, kFloat, kFlag };
  struct Option {
    std::string short_name, long_name, value_name, help;
    Kind kind;
    void* out;
    bool required = false;
    bool set = false;
  };
  void add(const char* names, const char* value_name, Kind kind, void* out, const char* help);
  Option* find(const std::string& name);
  void assign(Option& opt, const std::string& value);

  std::string usage_line_, summary_;
  std::vector<Option> options_;
};

}  // namespace quanta::cli
