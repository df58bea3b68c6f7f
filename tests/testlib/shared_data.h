// Locating ../shared (models, goldens, text) for tests: $QUANTA_SHARED, else the folder
// beside the repository. A missing folder or file fails the test loudly, never skips it.
#pragma once

#include <string>

namespace quanta::testlib {

// Root of the shared data; aborts the test binary with a clear message when it is missing.
const std::string& shared_dir();
// shared_dir() + "/" + relative; fails the calling test (ADD_FAILURE) when the file is missing.
std::string shared_path(const std::string& relative);
// shared_path("models/" + name): a model of ../shared/models.
std::string shared_model(const std::string& name);
// A scratch directory for files written by tests (inside the build tree), private to this
// process and removed when it exits.
std::string temp_dir();
// Path of the built `quanta` program.
std::string quanta_binary();
// Runs a shell command; returns its exit status and fills stdout_text (stderr goes to
// stderr_text when non-null, via a temporary file).
int run_command(const std::string& command, std::string* stdout_text,
                std::string* stderr_text = nullptr);
// Whole file as bytes.
std::string read_file(const std::string& path);

}  // namespace quanta::testlib
