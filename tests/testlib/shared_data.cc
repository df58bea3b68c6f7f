// Shared test-data lookup (see shared_data.h).
#include "testlib/shared_data.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

namespace quanta::testlib {

const std::string& shared_dir() {
  static const std::string dir = [] {
    const char* env = std::getenv("QUANTA_SHARED");
    std::string path = env && *env ? env : QUANTA_DEFAULT_SHARED;
    if (!std::filesystem::is_directory(path + "/models")) {
      std::fprintf(stderr,
                   "FATAL: shared test data not found at '%s' (no models/ folder). Set "
                   "QUANTA_SHARED to the shared folder.\n",
                   path.c_str());
      std::exit(2);
    }
    return path;
  }();
  return dir;
}

std::string shared_path(const std::string& relative) {
  std::string path = shared_dir() + "/" + relative;
  if (!std::filesystem::exists(path)) ADD_FAILURE() << "missing shared file: " << path;
  return path;
}

std::string shared_model(const std::string& name) { return shared_path("models/" + name); }

// NOTE: one folder per process, removed at exit: ctest runs test cases as parallel
// processes, and two of them writing the same file name would race.
std::string temp_dir() {
  // Never destroyed, so the exit handler can still read it.
  static const std::string* const dir = [] {
    auto* path = new std::string(std::string(QUANTA_BINARY_DIR) + "/test-tmp/p" +
                                 std::to_string(::getpid()));
    std::filesystem::create_directories(*path);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(*dir, ignored);
    });
    return path;
  }();
  return *dir;
}

std::string quanta_binary() { return std::string(QUANTA_BINARY_DIR) + "/quanta"; }

int run_command(const std::string& command, std::string* stdout_text, std::string* stderr_text) {
  const std::string err_path = temp_dir() + "/stderr-" + std::to_string(::getpid()) + ".txt";
  const std::string full = command + " 2>" + err_path;
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (stdout_text != nullptr) *stdout_text = out;
  if (stderr_text != nullptr) *stderr_text = read_file(err_path);
  std::remove(err_path.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace quanta::testlib
