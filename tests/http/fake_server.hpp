// A loopback cpp-httplib server for the HTTP plug-in tests: handlers are lambdas, the port
// is picked by the OS, and the destructor releases any stalled handler before stopping.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http/httplib_listen.hpp"

namespace fake {

class Server {
 public:
  Server() {
    // As `qstar serve` does: a wide listen backlog (src/http/httplib_listen.hpp).
    const auto b = qstar::http::detail::bind(http_, "127.0.0.1", 0);
    if (b.port <= 0 || !b.wide_backlog) throw std::runtime_error("fake::Server: cannot listen");
    port_ = b.port;
    http_.new_task_queue = [] { return new httplib::ThreadPool(16); };
  }
  ~Server() { stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void post(const std::string& path, httplib::Server::Handler h) { http_.Post(path, std::move(h)); }
  void get(const std::string& path, httplib::Server::Handler h) { http_.Get(path, std::move(h)); }
  /// Returns once the accept loop runs: cpp-httplib's stop() is a no-op before that.
  void start() { thread_ = qstar::http::detail::listen_in_background(http_); }
  void stop() {
    release();
    if (thread_.joinable()) {
      http_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Blocks a handler until release() (or `limit`).
  void stall(std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, limit, [&] { return released_; });
  }
  void release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

/// A port with nothing listening (bound, never listened on, closed): connections are refused.
inline int dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Opens `n` TCP connections to 127.0.0.1:`port` at once (non-blocking connects issued back
/// to back) and returns how many completed within `wait`. A listen backlog smaller than `n`
/// makes the kernel drop the extra SYNs, and those connects do not complete for ~1 s.
inline int connect_burst(int port, int n, std::chrono::milliseconds wait) {
  std::vector<int> socks;
  std::vector<pollfd> pending;  // fd -1 once finished (poll skips it)
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) break;
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // EINPROGRESS
    socks.push_back(fd);
    pending.push_back(pollfd{fd, POLLOUT, 0});
  }
  int done = 0, finished = 0;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (finished < static_cast<int>(socks.size())) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (::poll(pending.data(), pending.size(), static_cast<int>(left.count())) <= 0) break;
    for (auto& p : pending) {
      if (p.fd < 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP))) continue;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) ++done;
      ++finished;
      p.fd = -1;
    }
  }
  for (const int fd : socks) ::close(fd);
  return done;
}

}  // namespace fake
