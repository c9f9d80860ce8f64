// `qstar serve` as a child process for tests that talk to a real server: started with the
// given arguments (the executable first), its port read from the first line it prints.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace qstar_test {

class ServeProcess {
 public:
  /// Runs `args` (args[0]: the qstar executable, then "serve" and its flags) and blocks until
  /// the server prints the line with its address.
  explicit ServeProcess(std::vector<std::string> args) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
    char line[512] = {0};
    REQUIRE(std::fgets(line, sizeof line, out_) != nullptr);  // blocks until listening
    const std::string s = line;
    const auto at = s.find("127.0.0.1:");
    REQUIRE(at != std::string::npos);
    port_ = std::stoi(s.substr(at + 10));
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_) std::fclose(out_);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// SIGTERM, then the rest of its output (the stop line).
  std::string terminate() {
    ::kill(pid_, SIGTERM);
    std::string rest;
    char line[512];
    while (std::fgets(line, sizeof line, out_)) rest += line;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return rest;
  }
  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int port_ = 0;
};

}  // namespace qstar_test
