// Child processes for end-to-end tests: a background command (e.g. a streaming curl) that can
// be signalled and waited for, and a `quanta serve` started on a free loopback port.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace quanta::testlib {

// A command run through /bin/sh in the background, its stdout in a file. Killed (SIGKILL)
// and reaped on destruction if still running.
class ChildProcess {
 public:
  explicit ChildProcess(const std::string& shell_command);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig);
  // Waits up to timeout_s; returns the exit status, 128+signal when killed by one, or -1 on
  // timeout (still running).
  int wait(double timeout_s);
  bool running();
  std::string stdout_text() const;  // what it wrote so far
  std::string stdout_path() const { return out_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string out_path_;
};

// `quanta serve -m MODEL --port 0 ARGS` on 127.0.0.1; the constructor waits for the
// "listening on http://127.0.0.1:PORT" line (fails the test after 20 s).
class ServerProcess {
 public:
  ServerProcess(const std::string& model_path, const std::string& extra_args);
  int port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:PORT
  ChildProcess& process() { return proc_; }

 private:
  ChildProcess proc_;
  int port_ = 0;
};

}  // namespace quanta::testlib
