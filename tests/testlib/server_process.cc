// Background processes for the server end-to-end tests (fork + exec of /bin/sh -c).
#include "testlib/server_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "testlib/shared_data.h"

namespace quanta::testlib {

ChildProcess::ChildProcess(const std::string& shell_command) {
  static std::atomic<int> counter{0};
  out_path_ = temp_dir() + "/child" + std::to_string(counter++) + ".out";
  const std::string cmd = "exec " + shell_command + " > '" + out_path_ + "'";
  pid_ = fork();
  if (pid_ == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid_ < 0) ADD_FAILURE() << "fork failed for: " << shell_command;
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(10.0);
  }
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && status_ < 0) ::kill(pid_, sig);
}

int ChildProcess::wait(double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (status_ < 0 && pid_ > 0) {
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

bool ChildProcess::running() {
  return pid_ > 0 && wait(0.0) < 0;
}

std::string ChildProcess::stdout_text() const {
  return read_file(out_path_);
}

ServerProcess::ServerProcess(const std::string& model_path, const std::string& extra_args)
    : proc_(quanta_binary() + " serve -m '" + model_path + "' --host 127.0.0.1 --port 0 " +
            extra_args) {
  const std::string listening = "listening on http://127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string out = proc_.stdout_text();
    const size_t at = out.find(listening);
    if (at != std::string::npos && out.find('\n', at) != std::string::npos) {  // whole line
      port_ = std::atoi(out.c_str() + at + listening.size());
      return;
    }
    if (!proc_.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "quanta serve did not start (args: " << extra_args << ")";
}

std::string ServerProcess::url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

}  // namespace quanta::testlib
